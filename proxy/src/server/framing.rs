//! PDU framing only, as the proxy needs it: where PDUs start (so an injected A-ABORT never
//! lands inside a PDU), their sizes (metrics), and which bytes the `headers` payload mode
//! keeps. No decoding of contents: that is the wire engine's job.

/// A run of bytes of the chunk just scanned: kept or left out of a `headers` recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub len: usize,
    pub keep: bool,
}

/// Association PDU bytes kept in `headers` mode; the rest of an oversized (malformed)
/// association PDU becomes a hole.
const KEEP_ASSOC_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Collecting a 6-byte PDU header.
    PduHeader,
    /// Inside a non-P-DATA PDU body.
    Body { remaining: u64, kept: u64 },
    /// Inside a P-DATA-TF, collecting a 6-byte PDV item header.
    ItemHeader { pdu_remaining: u64 },
    /// Inside a PDV fragment.
    Pdv {
        remaining: u64,
        pdu_remaining: u64,
        pc: u8,
        command: bool,
        last: bool,
    },
    /// Inside a P-DATA-TF whose items no longer add up: opaque to the end of the PDU.
    Opaque { pdu_remaining: u64 },
}

/// One direction's PDU framing.
#[derive(Debug, Clone)]
pub struct Framer {
    state: State,
    hdr: [u8; 6],
    have: usize,
    /// Data set bytes to keep per data set in headers mode; `None` keeps everything.
    keep_data: Option<u64>,
    /// Data set bytes seen so far per presentation context (for the keep budget).
    seen: [u64; 256],
}

impl Framer {
    pub fn new(keep_data: Option<u64>) -> Self {
        Framer {
            state: State::PduHeader,
            hdr: [0; 6],
            have: 0,
            keep_data,
            seen: [0; 256],
        }
    }

    /// True between PDUs.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::PduHeader) && self.have == 0
    }

    /// Scans the next chunk of this direction: pushes each PDU header completed as
    /// `(type, total length incl. header)` into `pdus`, and the keep/omit runs covering the
    /// whole chunk into `spans` (adjacent runs merged).
    pub fn scan(&mut self, mut chunk: &[u8], pdus: &mut Vec<(u8, u64)>, spans: &mut Vec<Span>) {
        while !chunk.is_empty() {
            match self.state {
                State::PduHeader => {
                    let take = (6 - self.have).min(chunk.len());
                    self.hdr[self.have..self.have + take].copy_from_slice(&chunk[..take]);
                    self.have += take;
                    push(spans, take, true);
                    chunk = &chunk[take..];
                    if self.have == 6 {
                        self.have = 0;
                        let t = self.hdr[0];
                        let len = u32::from_be_bytes([
                            self.hdr[2],
                            self.hdr[3],
                            self.hdr[4],
                            self.hdr[5],
                        ]) as u64;
                        pdus.push((t, len + 6));
                        self.state = if len == 0 {
                            State::PduHeader
                        } else if t == 0x04 {
                            State::ItemHeader { pdu_remaining: len }
                        } else {
                            State::Body {
                                remaining: len,
                                kept: 0,
                            }
                        };
                    }
                }
                State::Body { remaining, kept } => {
                    let take = (remaining.min(chunk.len() as u64)) as usize;
                    let keep_budget = if self.keep_data.is_some() {
                        KEEP_ASSOC_BYTES.saturating_sub(kept)
                    } else {
                        u64::MAX
                    };
                    let k = (take as u64).min(keep_budget) as usize;
                    push(spans, k, true);
                    push(spans, take - k, false);
                    chunk = &chunk[take..];
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::PduHeader
                    } else {
                        State::Body {
                            remaining,
                            kept: kept + take as u64,
                        }
                    };
                }
                State::ItemHeader { pdu_remaining } => {
                    if self.have == 0 && pdu_remaining < 6 {
                        // Items do not add up to the PDU length.
                        self.have = 0;
                        self.state = State::Opaque { pdu_remaining };
                        continue;
                    }
                    let take = (6 - self.have).min(chunk.len());
                    self.hdr[self.have..self.have + take].copy_from_slice(&chunk[..take]);
                    self.have += take;
                    push(spans, take, true);
                    chunk = &chunk[take..];
                    if self.have < 6 {
                        self.state = State::ItemHeader { pdu_remaining };
                        continue;
                    }
                    self.have = 0;
                    let pdu_remaining = pdu_remaining - 6;
                    let item_len =
                        u32::from_be_bytes([self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]])
                            as u64;
                    let ctrl = self.hdr[5];
                    let frag = item_len.saturating_sub(2);
                    if item_len < 2 || frag > pdu_remaining {
                        self.state = if pdu_remaining == 0 {
                            State::PduHeader
                        } else {
                            State::Opaque { pdu_remaining }
                        };
                        continue;
                    }
                    let st = State::Pdv {
                        remaining: frag,
                        pdu_remaining,
                        pc: self.hdr[4],
                        command: ctrl & 1 == 1,
                        last: ctrl & 2 == 2,
                    };
                    self.state = st;
                    if frag == 0 {
                        self.finish_pdv();
                    }
                }
                State::Pdv {
                    remaining,
                    pdu_remaining,
                    pc,
                    command,
                    last,
                } => {
                    let take = (remaining.min(chunk.len() as u64)) as usize;
                    let k = match (command, self.keep_data) {
                        (true, _) | (_, None) => take,
                        (false, Some(budget)) => {
                            let seen = self.seen[pc as usize];
                            (budget.saturating_sub(seen).min(take as u64)) as usize
                        }
                    };
                    if !command {
                        self.seen[pc as usize] = self.seen[pc as usize].saturating_add(take as u64);
                    }
                    push(spans, k, true);
                    push(spans, take - k, false);
                    chunk = &chunk[take..];
                    self.state = State::Pdv {
                        remaining: remaining - take as u64,
                        pdu_remaining: pdu_remaining - take as u64,
                        pc,
                        command,
                        last,
                    };
                    if remaining == take as u64 {
                        self.finish_pdv();
                    }
                }
                State::Opaque { pdu_remaining } => {
                    let take = (pdu_remaining.min(chunk.len() as u64)) as usize;
                    push(spans, take, self.keep_data.is_none());
                    chunk = &chunk[take..];
                    let r = pdu_remaining - take as u64;
                    self.state = if r == 0 {
                        State::PduHeader
                    } else {
                        State::Opaque { pdu_remaining: r }
                    };
                }
            }
        }
    }

    fn finish_pdv(&mut self) {
        if let State::Pdv {
            pdu_remaining,
            pc,
            command,
            last,
            ..
        } = self.state
        {
            if last && !command {
                self.seen[pc as usize] = 0;
            }
            self.state = if pdu_remaining == 0 {
                State::PduHeader
            } else {
                State::ItemHeader { pdu_remaining }
            };
        }
    }
}

/// PDU boundaries only: where each PDU starts, its type and total length. The forwarding
/// pumps (for [`PduFramer::at_boundary`]) and the analysis task (PDU size metrics) need no
/// more, and skipping whole PDU bodies costs a few instructions per chunk where walking
/// the PDV items of [`Framer`] costs per item and per run. PDU boundaries depend on the PDU
/// lengths alone, so both framers agree on them and on the PDUs reported.
#[derive(Debug, Clone, Default)]
pub struct PduFramer {
    hdr: [u8; 6],
    have: usize,
    /// Body bytes of the current PDU still to come (0: collecting a header).
    remaining: u64,
    /// PDU headers seen (saturating).
    headers: u64,
}

impl PduFramer {
    pub fn new() -> Self {
        PduFramer::default()
    }

    /// True between PDUs.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0 && self.have == 0
    }

    /// The first PDU of this direction has arrived whole.
    pub fn first_complete(&self) -> bool {
        self.headers >= 2 || (self.headers == 1 && self.at_boundary())
    }

    /// Scans the next chunk of this direction: calls `on_pdu(type, total length incl.
    /// header)` for each PDU header completed, as [`Framer::scan`] pushes them.
    pub fn scan(&mut self, mut chunk: &[u8], mut on_pdu: impl FnMut(u8, u64)) {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let take = self.remaining.min(chunk.len() as u64);
                self.remaining -= take;
                chunk = &chunk[take as usize..];
                continue;
            }
            let take = (6 - self.have).min(chunk.len());
            self.hdr[self.have..self.have + take].copy_from_slice(&chunk[..take]);
            self.have += take;
            chunk = &chunk[take..];
            if self.have == 6 {
                self.have = 0;
                let len = u32::from_be_bytes([self.hdr[2], self.hdr[3], self.hdr[4], self.hdr[5]]);
                self.remaining = u64::from(len);
                self.headers = self.headers.saturating_add(1);
                on_pdu(self.hdr[0], u64::from(len) + 6);
            }
        }
    }
}

fn push(spans: &mut Vec<Span>, len: usize, keep: bool) {
    if len == 0 {
        return;
    }
    if let Some(last) = spans.last_mut()
        && last.keep == keep
    {
        last.len += len;
        return;
    }
    spans.push(Span { len, keep });
}

/// The called AE title of a complete A-ASSOCIATE-RQ PDU (bytes 10..26, spaces trimmed).
pub fn called_ae(pdu: &[u8]) -> Option<String> {
    if pdu.first() != Some(&0x01) {
        return None;
    }
    let raw = pdu.get(10..26)?;
    let s = String::from_utf8_lossy(raw);
    Some(s.trim_matches(|c| c == ' ' || c == '\0').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_wire::encode::abort;

    fn pdata(items: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (pc, ctrl, data) in items {
            body.extend_from_slice(&((data.len() + 2) as u32).to_be_bytes());
            body.push(*pc);
            body.push(*ctrl);
            body.extend_from_slice(data);
        }
        let mut pdu = vec![0x04, 0];
        pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
        pdu.extend_from_slice(&body);
        pdu
    }

    #[test]
    fn headers_mode_keeps_command_and_peek() {
        let cmd = [7u8; 20];
        let data = [9u8; 100];
        let mut stream = pdata(&[(1, 3, &cmd)]);
        stream.extend(pdata(&[(1, 0, &data)]));
        stream.extend(pdata(&[(1, 2, &data)]));
        stream.extend(abort(0, 0));
        for chunk_size in [1, 3, 7, 1000] {
            let mut f = Framer::new(Some(30));
            let mut pdus = Vec::new();
            let mut spans = Vec::new();
            for c in stream.chunks(chunk_size) {
                f.scan(c, &mut pdus, &mut spans);
            }
            let mut merged: Vec<Span> = Vec::new();
            for s in spans {
                push(&mut merged, s.len, s.keep);
            }
            assert!(f.at_boundary());
            assert_eq!(pdus.len(), 4);
            assert_eq!(pdus[3], (0x07, 10));
            let kept: usize = merged.iter().filter(|s| s.keep).map(|s| s.len).sum();
            // 3 PDU headers + 3 item headers + 20 command + 30 peek + abort
            assert_eq!(kept, 18 + 18 + 20 + 30 + 10, "chunk {chunk_size}");
            let total: usize = merged.iter().map(|s| s.len).sum();
            assert_eq!(total, stream.len());
        }
    }

    #[test]
    fn malformed_items_do_not_lose_the_boundary() {
        let mut stream = vec![0x04, 0, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0];
        stream.extend(abort(2, 0));
        let mut f = Framer::new(Some(10));
        let (mut pdus, mut spans) = (Vec::new(), Vec::new());
        f.scan(&stream, &mut pdus, &mut spans);
        assert_eq!(pdus, vec![(4, 14), (7, 10)]);
        assert!(f.at_boundary());
    }

    #[test]
    fn pdu_framer_agrees_with_the_framer() {
        let cmd = [7u8; 20];
        let data = [9u8; 100];
        let mut stream = pdata(&[(1, 3, &cmd)]);
        stream.extend(pdata(&[(1, 0, &data), (3, 2, &data)]));
        // Items that do not add up, an empty P-DATA-TF, an unknown type.
        stream.extend([0x04, 0, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]);
        stream.extend([0x04, 0, 0, 0, 0, 0]);
        stream.extend([0x04, 0, 0, 0, 0, 3, 0, 0, 1]);
        stream.extend([0x09, 0, 0, 0, 0, 2, 5, 5]);
        stream.extend(abort(2, 0));
        for chunk_size in [1, 2, 5, 6, 7, 13, 1000] {
            let mut full = Framer::new(None);
            let mut light = PduFramer::new();
            let (mut expected, mut spans, mut got) = (Vec::new(), Vec::new(), Vec::new());
            for c in stream.chunks(chunk_size) {
                full.scan(c, &mut expected, &mut spans);
                light.scan(c, |t, len| got.push((t, len)));
                assert_eq!(
                    full.at_boundary(),
                    light.at_boundary(),
                    "chunk {chunk_size}"
                );
            }
            assert_eq!(got, expected, "chunk {chunk_size}");
            assert_eq!(got.len(), 7);
            assert!(light.at_boundary());
        }
    }

    #[test]
    fn called_ae_is_trimmed() {
        let mut rq = vec![0x01, 0, 0, 0, 0, 68, 0, 1, 0, 0];
        rq.extend_from_slice(b"ARCHIVE         ");
        rq.extend_from_slice(b"CALLER          ");
        assert_eq!(called_ae(&rq).as_deref(), Some("ARCHIVE"));
    }
}
