//! The walk over data element headers: sequences and items (defined or undefined length,
//! nested) are entered so that text inside them is checked too, other values are skipped
//! by their length, and every length is checked against the bytes present and the
//! enclosing item before it is used.

use crate::charset::{self, Declared};
use crate::syntax::Encoding;

use super::text::{charset_terms, kept_text};
use super::vr::{Vr, implicit_vr, is_long_form, is_short_form};
use super::{DatasetPeek, InvalidText, MAX_LISTED, PrivateCreator};

/// Nesting of sequences beyond this is treated as hostile.
const MAX_SEQUENCE_DEPTH: usize = 32;
/// Distinct item-level (0008,0005) declarations tracked before further ones are ignored.
const MAX_DECLARATIONS: usize = 64;
pub(super) const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Why the walk stopped before the end of the data set.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stop {
    #[error("transfer syntax not known")]
    UnknownSyntax,
    /// Ran out of bytes; an error only when the data set was said to be complete.
    #[error("data set ends inside an element header at offset {offset}")]
    ShortHeader { offset: usize },
    #[error(
        "bad element length at offset {offset}: ({group:04X},{element:04X}) declares {length} bytes, {remaining} remain"
    )]
    ShortValue {
        offset: usize,
        group: u16,
        element: u16,
        length: u32,
        remaining: usize,
    },
    #[error(
        "bad element length at offset {offset}: ({group:04X},{element:04X}) of {length} bytes overruns its item or sequence ending at offset {end}"
    )]
    Overrun {
        offset: usize,
        group: u16,
        element: u16,
        length: u32,
        end: usize,
    },
    #[error("invalid VR bytes {b0:02X} {b1:02X} at offset {offset}")]
    BadVr { offset: usize, b0: u8, b1: u8 },
    #[error("undefined length on ({group:04X},{element:04X}) VR {vr} at offset {offset}")]
    Undefined {
        offset: usize,
        group: u16,
        element: u16,
        vr: String,
    },
    #[error("unexpected ({group:04X},{element:04X}) at offset {offset} {context}")]
    Unexpected {
        offset: usize,
        group: u16,
        element: u16,
        context: &'static str,
    },
    #[error("sequences nested deeper than {MAX_SEQUENCE_DEPTH} at offset {offset}")]
    TooDeep { offset: usize },
    #[error("data set ends inside a sequence or item opened at offset {offset}")]
    Unclosed { offset: usize },
    #[error("deflate stream corrupt at input offset {offset}: {message}")]
    Deflate { offset: usize, message: String },
}

impl Stop {
    /// Running out of bytes, which is only a limit when the data set is incomplete.
    fn is_short(&self) -> bool {
        matches!(
            self,
            Stop::ShortHeader { .. } | Stop::ShortValue { .. } | Stop::Unclosed { .. }
        )
    }
}

/// Byte-level encoding of the elements being walked; UN values of undefined length are
/// Implicit VR Little Endian whatever the data set's syntax (PS3.5 6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Syntax {
    pub(super) explicit: bool,
    pub(super) big_endian: bool,
}

impl Syntax {
    pub(super) const IMPLICIT_LE: Syntax = Syntax {
        explicit: false,
        big_endian: false,
    };
    pub(super) const EXPLICIT_LE: Syntax = Syntax {
        explicit: true,
        big_endian: false,
    };
    pub(super) const EXPLICIT_BE: Syntax = Syntax {
        explicit: true,
        big_endian: true,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Inside a sequence: items or a sequence delimiter come next.
    Sequence,
    /// Inside an item: data elements or an item delimiter come next.
    Item,
    /// Inside encapsulated pixel data (nested, e.g. an icon): fragments are skipped.
    Fragments,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Kind,
    /// Offset of the element or item header that opened the frame.
    start: usize,
    /// End offset for defined lengths; `None` until a delimiter.
    end: Option<usize>,
    syntax: Syntax,
    /// Index into `Walker::declared` of the character set in force.
    charset: usize,
}

pub(super) struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Start of the element being decoded: everything before it has been examined.
    at: usize,
    complete: bool,
    top: Syntax,
    frames: Vec<Frame>,
    /// Character set declarations: [0] is the data set's, the rest come from items.
    declared: Vec<Declared>,
    out: DatasetPeek,
}

impl<'a> Walker<'a> {
    pub(super) fn new(buf: &'a [u8], top: Syntax, complete: bool) -> Self {
        Walker {
            buf,
            pos: 0,
            at: 0,
            complete,
            top,
            frames: Vec::new(),
            declared: vec![charset::declared(&[])],
            out: DatasetPeek::default(),
        }
    }

    pub(super) fn run(mut self) -> DatasetPeek {
        if let Some(found) = self.sniff() {
            self.top = found;
            self.out.encoding_found = Some(if found.explicit {
                Encoding::ExplicitVrLittleEndian
            } else {
                Encoding::ImplicitVrLittleEndian
            });
        }
        match self.walk() {
            Ok(reached_end) => {
                // The buffer ended at an element boundary: unless the caller said the
                // data set is complete, more header elements may follow.
                self.out.truncated = reached_end && !self.complete;
            }
            Err(stop) if stop.is_short() && !self.complete => self.out.truncated = true,
            Err(stop) => self.out.error = Some(stop.to_string()),
        }
        self.out.examined = self.at.min(self.buf.len());
        self.out
    }

    /// Checks the first element against the declared syntax: invalid VR bytes under an
    /// explicit syntax mean Implicit VR, a known VR code under Implicit VR means Explicit
    /// VR Little Endian. Only the first element is judged, so that damage further on is
    /// reported as damage rather than guessed around.
    fn sniff(&self) -> Option<Syntax> {
        let vr: Vr = self.buf.get(4..6)?.try_into().ok()?;
        let (group, _) = self.tag(0, self.top).ok()?;
        if group == 0xFFFE || self.buf.len() < 8 {
            return None;
        }
        if self.top.explicit && !vr.iter().all(u8::is_ascii_uppercase) {
            let (group, _) = self.tag(0, Syntax::IMPLICIT_LE).ok()?;
            return (group != 0xFFFE && group % 2 == 0).then_some(Syntax::IMPLICIT_LE);
        }
        if !self.top.explicit && (is_short_form(&vr) || is_long_form(&vr)) {
            return Some(Syntax::EXPLICIT_LE);
        }
        None
    }

    /// Walks elements; `Ok(true)` when the buffer ended, `Ok(false)` at Pixel Data.
    fn walk(&mut self) -> Result<bool, Stop> {
        loop {
            self.close_ended_frames();
            self.at = self.pos;
            if self.pos >= self.buf.len() {
                return match self.frames.last() {
                    None => Ok(true),
                    Some(f) => Err(Stop::Unclosed { offset: f.start }),
                };
            }
            let start = self.pos;
            let syntax = self.frames.last().map_or(self.top, |f| f.syntax);
            let (group, element) = self.tag(start, syntax)?;
            if group == 0xFFFE {
                self.delimitation(start, syntax, element)?;
                continue;
            }
            let kind = self.frames.last().map(|f| f.kind);
            if matches!(kind, Some(Kind::Sequence | Kind::Fragments)) {
                return Err(Stop::Unexpected {
                    offset: start,
                    group,
                    element,
                    context: "where a sequence item was expected",
                });
            }
            // Pixel data (and the float variants, and trailing padding) end the peek.
            if kind.is_none()
                && ((group == 0x7FE0 && matches!(element, 0x0008..=0x0010))
                    || (group, element) == (0xFFFC, 0xFFFC))
            {
                return Ok(false);
            }
            let (vr, length, header) = self.header(start, syntax, group, element)?;
            self.pos = start + header;
            if length == UNDEFINED {
                let (kind, inner) = match &vr {
                    b"SQ" => (Kind::Sequence, syntax),
                    b"UN" => (Kind::Sequence, Syntax::IMPLICIT_LE),
                    b"OB" | b"OW" if syntax.explicit => (Kind::Fragments, syntax),
                    _ if !syntax.explicit && (group, element) == (0x7FE0, 0x0010) => {
                        (Kind::Fragments, syntax)
                    }
                    _ if !syntax.explicit => (Kind::Sequence, syntax),
                    _ => {
                        return Err(Stop::Undefined {
                            offset: start,
                            group,
                            element,
                            vr: String::from_utf8_lossy(&vr).into_owned(),
                        });
                    }
                };
                self.push(kind, start, None, inner)?;
                continue;
            }
            let end = self.value_end(start, group, element, length)?;
            if &vr == b"SQ" {
                self.push(Kind::Sequence, start, Some(end), syntax)?;
                continue;
            }
            let Some(value) = self.buf.get(self.pos..end) else {
                return Err(Stop::ShortValue {
                    offset: start,
                    group,
                    element,
                    length,
                    remaining: self.buf.len() - self.pos,
                });
            };
            self.on_value(group, element, vr, value);
            self.pos = end;
        }
    }

    /// Pops frames whose defined length has been consumed.
    fn close_ended_frames(&mut self) {
        while let Some(f) = self.frames.last() {
            match f.end {
                Some(end) if self.pos >= end => {
                    self.frames.pop();
                }
                _ => break,
            }
        }
    }

    /// Handles an item, item delimiter or sequence delimiter tag (FFFE,xxxx).
    fn delimitation(&mut self, start: usize, syntax: Syntax, element: u16) -> Result<(), Stop> {
        let length = self
            .u32_at(start + 4, syntax)
            .ok_or(Stop::ShortHeader { offset: start })?;
        self.pos = start + 8;
        let top = self.frames.last().copied();
        match (element, top) {
            (0xE000, Some(f)) if f.kind == Kind::Sequence => {
                let end = if length == UNDEFINED {
                    None
                } else {
                    Some(self.value_end(start, 0xFFFE, element, length)?)
                };
                self.push(Kind::Item, start, end, f.syntax)
            }
            (0xE000, Some(f)) if f.kind == Kind::Fragments && length != UNDEFINED => {
                let end = self.value_end(start, 0xFFFE, element, length)?;
                if end > self.buf.len() {
                    return Err(Stop::ShortValue {
                        offset: start,
                        group: 0xFFFE,
                        element,
                        length,
                        remaining: self.buf.len() - self.pos,
                    });
                }
                self.pos = end;
                Ok(())
            }
            (0xE00D, Some(f)) if f.kind == Kind::Item && f.end.is_none() => {
                self.frames.pop();
                Ok(())
            }
            (0xE0DD, Some(f)) if f.kind != Kind::Item && f.end.is_none() => {
                self.frames.pop();
                Ok(())
            }
            _ => Err(Stop::Unexpected {
                offset: start,
                group: 0xFFFE,
                element,
                context: match top.map(|f| f.kind) {
                    None => "at the top level of the data set",
                    Some(Kind::Item) => "inside an item",
                    Some(_) => "inside a sequence",
                },
            }),
        }
    }

    /// The end offset of a value of `length` bytes starting at `self.pos`, checked against
    /// the enclosing defined-length item or sequence and, for a complete data set,
    /// against the buffer.
    fn value_end(
        &self,
        start: usize,
        group: u16,
        element: u16,
        length: u32,
    ) -> Result<usize, Stop> {
        let remaining = self.buf.len().saturating_sub(self.pos);
        let end = usize::try_from(length)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .unwrap_or(usize::MAX);
        if let Some(limit) = self.frames.iter().rev().find_map(|f| f.end)
            && end > limit
        {
            return Err(Stop::Overrun {
                offset: start,
                group,
                element,
                length,
                end: limit,
            });
        }
        if end > self.buf.len() && self.complete {
            return Err(Stop::ShortValue {
                offset: start,
                group,
                element,
                length,
                remaining,
            });
        }
        Ok(end)
    }

    fn push(
        &mut self,
        kind: Kind,
        start: usize,
        end: Option<usize>,
        syntax: Syntax,
    ) -> Result<(), Stop> {
        if self.frames.len() >= 2 * MAX_SEQUENCE_DEPTH {
            return Err(Stop::TooDeep { offset: start });
        }
        let charset = self.frames.last().map_or(0, |f| f.charset);
        self.frames.push(Frame {
            kind,
            start,
            end,
            syntax,
            charset,
        });
        Ok(())
    }

    fn tag(&self, at: usize, syntax: Syntax) -> Result<(u16, u16), Stop> {
        match (self.u16_at(at, syntax), self.u16_at(at + 2, syntax)) {
            (Some(g), Some(e)) => Ok((g, e)),
            _ => Err(Stop::ShortHeader { offset: at }),
        }
    }

    /// VR, value length and header size of the data element at `at`.
    fn header(
        &self,
        at: usize,
        syntax: Syntax,
        group: u16,
        element: u16,
    ) -> Result<(Vr, u32, usize), Stop> {
        let short = Stop::ShortHeader { offset: at };
        if !syntax.explicit {
            let length = self.u32_at(at + 4, syntax).ok_or(short)?;
            return Ok((implicit_vr(group, element), length, 8));
        }
        let (Some(&b0), Some(&b1)) = (self.buf.get(at + 4), self.buf.get(at + 5)) else {
            return Err(short);
        };
        let vr = [b0, b1];
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(Stop::BadVr { offset: at, b0, b1 });
        }
        if is_short_form(&vr) {
            let length = self.u16_at(at + 6, syntax).ok_or(short)?;
            Ok((vr, u32::from(length), 8))
        } else {
            // OB, OW, SQ, UN, UT... and, per PS3.5 7.1.2, any VR not known to be short.
            let length = self.u32_at(at + 8, syntax).ok_or(short)?;
            Ok((vr, length, 12))
        }
    }

    fn u16_at(&self, at: usize, syntax: Syntax) -> Option<u16> {
        let b: [u8; 2] = self.buf.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if syntax.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(&self, at: usize, syntax: Syntax) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if syntax.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// Records what a value says: identifying attributes at the top level, character set
    /// declarations, private creators, and text validity.
    fn on_value(&mut self, group: u16, element: u16, vr: Vr, value: &[u8]) {
        let top_level = self.frames.is_empty();
        if top_level {
            let slot = match (group, element) {
                (0x0008, 0x0016) => Some(&mut self.out.sop_class_uid),
                (0x0008, 0x0018) => Some(&mut self.out.sop_instance_uid),
                (0x0020, 0x000D) => Some(&mut self.out.study_instance_uid),
                (0x0020, 0x000E) => Some(&mut self.out.series_instance_uid),
                (0x0008, 0x0060) => Some(&mut self.out.modality),
                _ => None,
            };
            if let Some(slot) = slot {
                *slot = Some(kept_text(value));
            }
        }
        if (group, element) == (0x0008, 0x0005) {
            self.on_charset(value, top_level);
        }
        if group % 2 == 1 && matches!(element, 0x0010..=0x00FF) {
            let creator = PrivateCreator {
                group,
                block: u8::try_from(element).unwrap_or(u8::MAX),
                creator: kept_text(value),
                in_sequence: !top_level,
            };
            if self.out.private_creators.len() < MAX_LISTED
                && !self.out.private_creators.contains(&creator)
            {
                self.out.private_creators.push(creator);
            }
        }
        let vr_name = std::str::from_utf8(&vr).unwrap_or("UN");
        if charset::is_text_vr(vr_name) && self.out.invalid_text.len() < MAX_LISTED {
            let index = self.frames.last().map_or(0, |f| f.charset);
            if let Some(Declared::Checked { repertoire, term }) = self.declared.get(index)
                && let Err((byte_offset, reason)) =
                    charset::check_value(*repertoire, term, vr_name, value)
            {
                self.out.invalid_text.push(InvalidText {
                    tag: format!("({group:04X},{element:04X})"),
                    vr: vr_name.to_owned(),
                    byte_offset,
                    reason,
                });
            }
        }
    }

    /// A (0008,0005): for the data set at the top level, for the current item inside one.
    fn on_charset(&mut self, value: &[u8], top_level: bool) {
        let terms = charset_terms(value);
        let declared = charset::declared(&terms);
        if let Declared::Unchecked(unchecked) = &declared {
            for term in unchecked {
                if self.out.unchecked_character_sets.len() < MAX_LISTED
                    && !self.out.unchecked_character_sets.contains(term)
                {
                    self.out.unchecked_character_sets.push(term.clone());
                }
            }
        }
        if top_level {
            self.out.specific_character_set = terms;
            self.declared[0] = declared;
        } else if self.declared.len() < MAX_DECLARATIONS
            && let Some(frame) = self.frames.last_mut()
        {
            frame.charset = self.declared.len();
            self.declared.push(declared);
        }
    }
}
