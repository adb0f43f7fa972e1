//! One direction of one TCP connection: sequence numbers in, an ordered byte stream out.
//!
//! Bytes are addressed by their 64-bit offset in the stream, converted from the 32-bit
//! sequence number relative to the next expected byte, so wraparound never reaches the
//! buffer. Every byte is delivered once; when two segments disagree about a byte the
//! first one seen wins (what the receiver most likely kept) and the conflict is counted.
//! Holes are declared (delivered as gaps) when the receiver acknowledges beyond them, the
//! out-of-order buffer hits its cap, a hole outlives the gap timeout, or the connection
//! ends.

use std::collections::BTreeMap;

use dicomtap_wire::StreamEnd;

use super::CaptureStats;

/// Bookkeeping cost charged per buffered segment on top of its bytes, so that many tiny
/// segments cannot exceed the memory cap through overhead.
const SEG_OVERHEAD: usize = 64;
/// Segments further ahead than this are not this connection's (or are corrupt).
const MAX_AHEAD: i64 = 1 << 30;

/// Where reassembled output goes (the connection, which maps directions to sides).
pub(crate) trait Emit {
    fn data(&mut self, data: &[u8]);
    fn gap(&mut self, missing: u64);
    /// `n` bytes the recording left out on purpose (not capture loss).
    fn omitted(&mut self, n: u64);
    fn end(&mut self, how: StreamEnd);
}

#[derive(Debug)]
enum Seg {
    Data(Vec<u8>),
    /// Bytes known to exist but not captured (snap length).
    Lost(u64),
    /// Bytes a recording says it left out on purpose.
    Omitted(u64),
}

impl Seg {
    fn len(&self) -> u64 {
        match self {
            Seg::Data(d) => d.len() as u64,
            Seg::Lost(n) | Seg::Omitted(n) => *n,
        }
    }
    fn cost(&self) -> usize {
        match self {
            Seg::Data(d) => d.len() + SEG_OVERHEAD,
            Seg::Lost(_) | Seg::Omitted(_) => SEG_OVERHEAD,
        }
    }
}

#[derive(Clone, Copy)]
enum Piece<'a> {
    Data(&'a [u8]),
    Lost(u64),
    Omitted(u64),
}

impl<'a> Piece<'a> {
    fn len(&self) -> u64 {
        match self {
            Piece::Data(d) => d.len() as u64,
            Piece::Lost(n) | Piece::Omitted(n) => *n,
        }
    }
    /// The sub-range `[from, to)` (relative offsets).
    fn slice(&self, from: u64, to: u64) -> Piece<'a> {
        match self {
            Piece::Data(d) => Piece::Data(&d[from as usize..to as usize]),
            Piece::Lost(_) => Piece::Lost(to - from),
            Piece::Omitted(_) => Piece::Omitted(to - from),
        }
    }
}

/// Reassembly state of one direction.
#[derive(Debug)]
pub(crate) struct Half {
    init: bool,
    syn_seen: bool,
    isn: u32,
    /// Sequence number of the byte at `next_off`.
    next_seq: u32,
    /// Stream offset of the next byte to deliver (bytes delivered plus gaps).
    next_off: u64,
    ooo: BTreeMap<u64, Seg>,
    ooo_cost: usize,
    cap: usize,
    fin_off: Option<u64>,
    ended: bool,
    /// Capture time at which the current hole was first seen.
    hole_since: Option<u64>,
    /// Capture time at which the peer first acknowledged past the current hole.
    acked_at: Option<u64>,
}

impl Half {
    pub(crate) fn new(cap: usize) -> Self {
        Half {
            init: false,
            syn_seen: false,
            isn: 0,
            next_seq: 0,
            next_off: 0,
            ooo: BTreeMap::new(),
            ooo_cost: 0,
            cap,
            fin_off: None,
            ended: false,
            hole_since: None,
            acked_at: None,
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Bytes currently held out of order.
    pub(crate) fn buffered(&self) -> usize {
        self.ooo_cost
    }

    /// True when a SYN with a different initial sequence number than the one this
    /// direction started with would mean a new connection on the same 4-tuple.
    pub(crate) fn is_new_isn(&self, seq: u32) -> bool {
        self.init && (!self.syn_seen || self.isn != seq)
    }

    pub(crate) fn syn(&mut self, seq: u32) {
        if !self.init || (!self.syn_seen && self.next_off == 0 && self.ooo.is_empty()) {
            self.init = true;
            self.syn_seen = true;
            self.isn = seq;
            self.next_seq = seq.wrapping_add(1);
        }
    }

    /// Without a SYN, the stream starts at the first segment seen (capture started
    /// mid-connection).
    pub(crate) fn init_from(&mut self, seq: u32) {
        if !self.init {
            self.init = true;
            self.next_seq = seq;
        }
    }

    fn off(&self, seq: u32) -> i64 {
        self.next_off as i64 + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    fn advance(&mut self, n: u64) {
        if n > 0 {
            self.acked_at = None;
        }
        self.next_off += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// A segment's payload (`payload` captured of `wire_len` on the wire) at `data_seq`
    /// (the SYN already accounted for), with or without FIN. `[omitted, lost]`: a dicomtap
    /// recording's packet comment says `omitted` bytes just before it were left out on
    /// purpose (`headers` mode) and `lost` bytes before those were dropped by its recorder
    /// (a gap, whether or not a later segment shows the hole).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn segment(
        &mut self,
        data_seq: u32,
        payload: &[u8],
        wire_len: u32,
        fin: bool,
        [omitted_before, lost_before]: [u64; 2],
        now: u64,
        stats: &mut CaptureStats,
        out: &mut impl Emit,
    ) {
        if !self.init {
            return;
        }
        if self.ended {
            if wire_len > 0 {
                stats.retransmissions += 1;
            }
            return;
        }
        let start = self.off(data_seq);
        let wire = i64::from(wire_len);
        let next = self.next_off as i64;
        // Bounded like any segment: never further back than the stream's start.
        let omitted = omitted_before.min(MAX_AHEAD as u64) as i64;
        if omitted > 0 && start - omitted - next <= MAX_AHEAD {
            self.accept(start - omitted, Piece::Omitted(omitted as u64), stats, out);
        }
        let lost = lost_before.min(MAX_AHEAD as u64) as i64;
        let lost_at = start - omitted - lost;
        if lost > 0 && lost_at - next <= MAX_AHEAD && lost_at + lost > next {
            stats.recorder_lost_bytes += (lost_at + lost - lost_at.max(next)) as u64;
            self.accept(lost_at, Piece::Lost(lost as u64), stats, out);
        }
        if wire > 0 {
            if start + wire <= next {
                stats.retransmissions += 1;
            } else if start - next > MAX_AHEAD {
                stats.out_of_window += 1;
            } else {
                if start < next {
                    stats.overlaps += 1;
                }
                let cap_len = payload.len().min(wire_len as usize);
                self.accept(start, Piece::Data(&payload[..cap_len]), stats, out);
                if (cap_len as u32) < wire_len {
                    let lost = u64::from(wire_len) - cap_len as u64;
                    self.accept(start + cap_len as i64, Piece::Lost(lost), stats, out);
                }
            }
        }
        if fin && self.fin_off.is_none() && start + wire - next <= MAX_AHEAD {
            self.fin_off = Some((start + wire).max(self.next_off as i64) as u64);
        }
        while self.ooo_cost > self.cap {
            if !self.skip_hole(stats, out) {
                break;
            }
        }
        self.check_fin(out);
        self.track_hole(now);
    }

    /// The peer acknowledged up to `ack`. A hole it acknowledged was received by it but
    /// missed by the capture; it is declared a gap after a short grace period rather than
    /// at once, because captures merged from several interfaces can show an ACK slightly
    /// before the data it acknowledges.
    pub(crate) fn peer_ack(&mut self, ack: u32, now: u64) {
        if !self.init || self.ended {
            return;
        }
        if let Some(target) = self.hole_end()
            && self.off(ack) >= target as i64
        {
            self.acked_at.get_or_insert(now);
        }
    }

    /// A hole timer runs: [`Half::check_timeout`] may have something to do.
    pub(crate) fn timer_pending(&self) -> bool {
        self.hole_since.is_some() || self.acked_at.is_some()
    }

    /// Declare the current hole a gap if it is older than `timeout`, or was acknowledged
    /// by the peer more than `ack_grace` ago (capture time).
    pub(crate) fn check_timeout(
        &mut self,
        now: u64,
        timeout: u64,
        ack_grace: u64,
        stats: &mut CaptureStats,
        out: &mut impl Emit,
    ) {
        let by_age = self
            .hole_since
            .is_some_and(|since| now.saturating_sub(since) >= timeout);
        let by_ack = self
            .acked_at
            .is_some_and(|at| now.saturating_sub(at) >= ack_grace);
        if by_age || by_ack {
            self.skip_hole(stats, out);
            self.check_fin(out);
            self.hole_since = None;
            self.acked_at = None;
            self.track_hole(now);
        }
    }

    /// Deliver everything still buffered, with gaps for the holes, and end the stream at
    /// its FIN if one was seen (connection closing, reset or expiring).
    pub(crate) fn flush(&mut self, stats: &mut CaptureStats, out: &mut impl Emit) {
        while self.skip_hole(stats, out) {}
        self.check_fin(out);
        self.hole_since = None;
    }

    /// This direction sent a RST.
    pub(crate) fn reset(&mut self, stats: &mut CaptureStats, out: &mut impl Emit) {
        self.fin_off = None;
        self.flush(stats, out);
        if !self.ended {
            self.ended = true;
            self.ooo.clear();
            self.ooo_cost = 0;
            out.end(StreamEnd::Reset);
        }
    }

    /// End offset of the current hole: the first buffered segment or the FIN.
    fn hole_end(&self) -> Option<u64> {
        if self.ended {
            return None;
        }
        match self.ooo.first_key_value() {
            Some((&k, _)) => Some(k),
            None => self.fin_off.filter(|&f| f > self.next_off),
        }
    }

    /// Give up on the current hole: deliver a gap up to the next known byte, then drain.
    fn skip_hole(&mut self, stats: &mut CaptureStats, out: &mut impl Emit) -> bool {
        let Some(target) = self.hole_end() else {
            return false;
        };
        if target > self.next_off {
            let missing = target - self.next_off;
            stats.gaps += 1;
            stats.gap_bytes += missing;
            out.gap(missing);
            self.advance(missing);
        }
        self.drain(stats, out);
        true
    }

    fn track_hole(&mut self, now: u64) {
        if self.hole_end().is_some() {
            self.hole_since.get_or_insert(now);
        } else {
            self.hole_since = None;
            self.acked_at = None;
        }
    }

    fn check_fin(&mut self, out: &mut impl Emit) {
        if let Some(f) = self.fin_off
            && !self.ended
            && self.next_off >= f
        {
            self.ended = true;
            // Anything buffered beyond the FIN is not part of the stream.
            self.ooo.clear();
            self.ooo_cost = 0;
            out.end(StreamEnd::Close);
        }
    }

    /// Place a piece that starts at stream offset `start` (maybe before `next_off`).
    fn accept(
        &mut self,
        start: i64,
        piece: Piece<'_>,
        stats: &mut CaptureStats,
        out: &mut impl Emit,
    ) {
        let len = piece.len();
        let next = self.next_off as i64;
        let end = start + len as i64;
        if end <= next || len == 0 {
            return;
        }
        let (start, piece) = if start < next {
            let skip = (next - start) as u64;
            (self.next_off, piece.slice(skip, len))
        } else {
            (start as u64, piece)
        };
        let len = piece.len();
        if start == self.next_off {
            // In order: deliver straight from the packet, up to the first buffered
            // segment (which was seen first and so wins any overlap).
            let until = self
                .ooo
                .first_key_value()
                .map_or(len, |(&k, _)| (k - start).min(len));
            self.emit(piece.slice(0, until), stats, out);
            if until < len {
                self.insert(start + until, piece.slice(until, len), stats);
            }
        } else {
            stats.out_of_order += 1;
            self.insert(start, piece, stats);
        }
        self.drain(stats, out);
    }

    fn emit(&mut self, piece: Piece<'_>, stats: &mut CaptureStats, out: &mut impl Emit) {
        match piece {
            Piece::Data(d) => {
                if !d.is_empty() {
                    out.data(d);
                }
            }
            Piece::Lost(n) => {
                stats.gaps += 1;
                stats.gap_bytes += n;
                out.gap(n);
            }
            Piece::Omitted(n) => {
                stats.omitted_bytes += n;
                out.omitted(n);
            }
        }
        self.advance(piece.len());
    }

    /// Buffer the parts of `piece` not already buffered; compare the parts that are.
    fn insert(&mut self, start: u64, piece: Piece<'_>, stats: &mut CaptureStats) {
        let end = start + piece.len();
        let mut overlapping: Vec<(u64, u64)> = Vec::new();
        if let Some((&k, seg)) = self.ooo.range(..start).next_back()
            && k + seg.len() > start
        {
            overlapping.push((k, k + seg.len()));
        }
        overlapping.extend(self.ooo.range(start..end).map(|(&k, s)| (k, k + s.len())));
        if !overlapping.is_empty() {
            stats.overlaps += 1;
            let mut conflict = false;
            if let Piece::Data(new) = piece {
                for &(k, ke) in &overlapping {
                    if let Some(Seg::Data(old)) = self.ooo.get(&k) {
                        let (os, oe) = (k.max(start), ke.min(end));
                        let a = &old[(os - k) as usize..(oe - k) as usize];
                        let b = &new[(os - start) as usize..(oe - start) as usize];
                        conflict |= a != b;
                    }
                }
            }
            if conflict {
                stats.overlap_conflicts += 1;
            }
        }
        let mut cur = start;
        for (k, ke) in overlapping {
            if k > cur {
                self.put(cur, piece.slice(cur - start, k - start));
            }
            cur = cur.max(ke);
        }
        if cur < end {
            self.put(cur, piece.slice(cur - start, end - start));
        }
    }

    fn put(&mut self, at: u64, piece: Piece<'_>) {
        let seg = match piece {
            Piece::Data(d) => Seg::Data(d.to_vec()),
            Piece::Lost(n) => Seg::Lost(n),
            Piece::Omitted(n) => Seg::Omitted(n),
        };
        self.ooo_cost += seg.cost();
        self.ooo.insert(at, seg);
    }

    /// Deliver buffered segments that have become contiguous.
    fn drain(&mut self, stats: &mut CaptureStats, out: &mut impl Emit) {
        while let Some(entry) = self.ooo.first_entry() {
            let k = *entry.key();
            if k > self.next_off {
                break;
            }
            let seg = entry.remove();
            self.ooo_cost -= seg.cost();
            let skip = self.next_off - k;
            if skip >= seg.len() {
                continue;
            }
            match &seg {
                Seg::Data(d) => self.emit(Piece::Data(&d[skip as usize..]), stats, out),
                Seg::Lost(n) => self.emit(Piece::Lost(n - skip), stats, out),
                Seg::Omitted(n) => self.emit(Piece::Omitted(n - skip), stats, out),
            }
        }
    }
}
