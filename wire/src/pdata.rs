//! P-DATA-TF streaming (PS3.8 9.3.5): the PDV items of a PDU and their fragments, decoded
//! as bytes arrive, so a multi-gigabyte data set never sits in memory.

/// Length of a PDV item header: 32-bit length, context ID, message control header.
pub const PDV_HEADER_LEN: usize = 6;

/// What the PDV parser hands back for a slice of P-DATA body bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum PdvPiece<'a> {
    /// A PDV item header was completed; `offset` is its position in the stream.
    Header {
        offset: u64,
        pc_id: u8,
        control: u8,
        length: u32,
    },
    /// Fragment bytes of the current PDV.
    Fragment {
        pc_id: u8,
        control: u8,
        bytes: &'a [u8],
        last_of_item: bool,
    },
    /// An item length that does not fit in what remains of the PDU (or is below 2).
    BadLength {
        offset: u64,
        declared: u32,
        remaining: u32,
    },
}

/// Incremental parser of the body of one P-DATA-TF PDU.
#[derive(Debug)]
pub struct PdvParser {
    /// Bytes of the PDU body not consumed yet.
    remaining: u32,
    state: PdvState,
}

#[derive(Debug)]
enum PdvState {
    Header {
        buf: [u8; PDV_HEADER_LEN],
        have: usize,
    },
    Body {
        pc_id: u8,
        control: u8,
        left: u32,
    },
    /// After a bad item length: the rest of the PDU is skipped.
    Skip,
}

impl PdvParser {
    pub fn new(body_len: u32) -> Self {
        PdvParser {
            remaining: body_len,
            state: PdvState::Header {
                buf: [0; PDV_HEADER_LEN],
                have: 0,
            },
        }
    }

    /// Bytes of the PDU body still expected.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Whether the PDU ended in the middle of a PDV header (only meaningful once
    /// `remaining()` is 0).
    pub fn partial_header(&self) -> usize {
        match self.state {
            PdvState::Header { have, .. } => have,
            _ => 0,
        }
    }

    /// Whether the parser is inside the bytes of a fragment.
    pub fn in_data(&self) -> bool {
        matches!(self.state, PdvState::Body { .. })
    }

    /// Bytes left in the current fragment (0 outside one).
    pub fn data_left(&self) -> u32 {
        match self.state {
            PdvState::Body { left, .. } => left,
            _ => 0,
        }
    }

    /// Presentation context of the current fragment.
    pub fn current_pc(&self) -> Option<u8> {
        match self.state {
            PdvState::Body { pc_id, .. } => Some(pc_id),
            _ => None,
        }
    }

    /// The current fragment belongs to a command set.
    pub fn current_is_command(&self) -> bool {
        matches!(self.state, PdvState::Body { control, .. } if control & 1 != 0)
    }

    /// The current fragment is the last of its message.
    pub fn current_is_last(&self) -> bool {
        matches!(self.state, PdvState::Body { control, .. } if control & 2 != 0)
    }

    /// Skips `n` bytes of the current fragment (bytes lost from a capture); returns whether
    /// that ended the item. `n` is clamped to what the fragment holds.
    pub fn skip_data(&mut self, n: u32) -> bool {
        let PdvState::Body { left, .. } = &mut self.state else {
            return false;
        };
        let n = n.min(*left).min(self.remaining);
        *left -= n;
        self.remaining -= n;
        if *left == 0 {
            self.state = PdvState::Header {
                buf: [0; PDV_HEADER_LEN],
                have: 0,
            };
            true
        } else {
            false
        }
    }

    /// Consumes a prefix of `input` (never more than the PDU body holds) starting at stream
    /// offset `offset`, and returns how many bytes it took and the piece found, if any.
    pub fn step<'a>(&mut self, input: &'a [u8], offset: u64) -> (usize, Option<PdvPiece<'a>>) {
        let avail = input.len().min(self.remaining as usize);
        if avail == 0 {
            return (0, None);
        }
        match &mut self.state {
            PdvState::Header { buf, have } => {
                let take = (PDV_HEADER_LEN - *have).min(avail);
                buf[*have..*have + take].copy_from_slice(&input[..take]);
                *have += take;
                self.remaining -= take as u32;
                if *have < PDV_HEADER_LEN {
                    return (take, None);
                }
                let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                let (pc_id, control) = (buf[4], buf[5]);
                let header_offset = offset + take as u64 - PDV_HEADER_LEN as u64;
                // The item length covers the context ID and control bytes already read.
                if length < 2 || length - 2 > self.remaining {
                    let piece = PdvPiece::BadLength {
                        offset: header_offset,
                        declared: length,
                        remaining: self.remaining + 2,
                    };
                    self.state = PdvState::Skip;
                    return (take, Some(piece));
                }
                self.state = PdvState::Body {
                    pc_id,
                    control,
                    left: length - 2,
                };
                if length == 2 {
                    // An empty fragment still completes the item.
                    self.state = PdvState::Header {
                        buf: [0; PDV_HEADER_LEN],
                        have: 0,
                    };
                }
                (
                    take,
                    Some(PdvPiece::Header {
                        offset: header_offset,
                        pc_id,
                        control,
                        length,
                    }),
                )
            }
            PdvState::Body {
                pc_id,
                control,
                left,
            } => {
                let take = (*left as usize).min(avail);
                *left -= take as u32;
                self.remaining -= take as u32;
                let piece = PdvPiece::Fragment {
                    pc_id: *pc_id,
                    control: *control,
                    bytes: &input[..take],
                    last_of_item: *left == 0,
                };
                if *left == 0 {
                    self.state = PdvState::Header {
                        buf: [0; PDV_HEADER_LEN],
                        have: 0,
                    };
                }
                (take, Some(piece))
            }
            PdvState::Skip => {
                self.remaining -= avail as u32;
                (avail, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(body: &[u8], chunk: usize) -> Vec<String> {
        let mut p = PdvParser::new(body.len() as u32);
        let mut out = Vec::new();
        let mut off = 0usize;
        for c in body.chunks(chunk) {
            let mut pos = 0;
            while pos < c.len() {
                let (n, piece) = p.step(&c[pos..], (off + pos) as u64);
                pos += n;
                if let Some(piece) = piece {
                    out.push(format!("{piece:?}"));
                }
                if n == 0 {
                    break;
                }
            }
            off += c.len();
        }
        out
    }

    #[test]
    fn two_items_any_chunking() {
        let mut body = vec![0, 0, 0, 5, 1, 3, b'a', b'b', b'c'];
        body.extend_from_slice(&[0, 0, 0, 3, 3, 2, b'z']);
        let whole = collect(&body, body.len());
        assert_eq!(whole.len(), 4);
        assert!(whole[1].contains("last_of_item: true"));
        let joined_whole: Vec<_> = whole.iter().filter(|s| s.starts_with("Header")).collect();
        let bytewise = collect(&body, 1);
        let joined_bytes: Vec<_> = bytewise
            .iter()
            .filter(|s| s.starts_with("Header"))
            .collect();
        assert_eq!(joined_whole, joined_bytes);
    }

    #[test]
    fn bad_item_length_skips_rest() {
        let body = [0, 0, 0x10, 0, 1, 3, 1, 2];
        let out = collect(&body, 3);
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with("BadLength"));
    }
}
