//! A bounded peek at the start of a data set: identifying UIDs, modality, character set
//! and whether its text is valid in it, private creators. Pixel data is never decoded.
//!
//! The peek walks data element headers over a borrowed buffer and copies only the few
//! short values it reports. Sequences (defined or undefined length, nested) are walked
//! rather than skipped so that text inside them is checked too; values that are not
//! needed are skipped by their length. Every length read from the buffer is checked
//! against the bytes present (and the enclosing item) before it is used, nothing is
//! allocated from a length, and the walk stops at top-level Pixel Data.

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use flate2::{Decompress, FlushDecompress, Status};
use serde::Serialize;

use crate::charset::{self, Declared};
use crate::syntax::Encoding;

/// A private creator element (gggg,00xx) and the block it reserves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivateCreator {
    pub group: u16,
    /// The xx of (gggg,00xx): the block (gggg,xx00-xxFF) it reserves.
    pub block: u8,
    pub creator: String,
    /// Found inside a sequence item rather than at the top level of the data set.
    pub in_sequence: bool,
}

/// A text value that is not valid in the declared character set. The value itself is not
/// kept (it may be a patient's name); its tag, VR and the offset of the first bad byte are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidText {
    pub tag: String,
    pub vr: String,
    /// Offset of the first offending byte within the value.
    pub byte_offset: usize,
    pub reason: String,
}

/// What the peek found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DatasetPeek {
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub modality: Option<String>,
    /// Values of (0008,0005); empty when absent (ISO_IR 6, the default repertoire).
    pub specific_character_set: Vec<String>,
    /// Declared sets whose text could not be checked (ISO 2022 code extensions, unknown
    /// terms), including sets declared inside sequence items.
    pub unchecked_character_sets: Vec<String>,
    /// At most [`MAX_LISTED`] entries.
    pub invalid_text: Vec<InvalidText>,
    /// Distinct private creators, at most [`MAX_LISTED`].
    pub private_creators: Vec<PrivateCreator>,
    /// Bytes of the data set that were examined (of the inflated data set when deflated).
    pub examined: usize,
    /// The peek stopped at its byte limit before the end of the header elements.
    pub truncated: bool,
    /// Why decoding stopped early, with the offset.
    pub error: Option<String>,
    /// Set when the data set is not encoded as its transfer syntax says (Implicit VR
    /// under an explicit VR syntax, or the reverse, a known device fault); the peek then
    /// read it as found, like dcmtk and pydicom do.
    pub encoding_found: Option<Encoding>,
}

/// Cap on the entries of each list in a [`DatasetPeek`], so that a hostile data set with
/// thousands of private blocks or bad values cannot grow the event without bound.
pub const MAX_LISTED: usize = 64;
/// Most bytes of inflated data set a deflated peek produces, whatever the input size.
pub const MAX_INFLATED: usize = 1 << 20;
/// Inflated bytes allowed per input byte (and at least [`MIN_INFLATED`]): enough for
/// header elements, far too little for a decompression bomb to matter.
const INFLATE_RATIO: usize = 4;
const MIN_INFLATED: usize = 16 * 1024;
/// Nesting of sequences beyond this is treated as hostile.
const MAX_SEQUENCE_DEPTH: usize = 32;
/// Longest value prefix copied into a reported string (UIs are at most 64 bytes).
const MAX_KEPT: usize = 256;
/// Distinct item-level (0008,0005) declarations tracked before further ones are ignored.
const MAX_DECLARATIONS: usize = 64;
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Peeks at `bytes`, the start of a data set encoded as `encoding`. `complete` says the
/// whole data set is in `bytes` (so running out of bytes is an error, not a limit).
pub fn peek_dataset(bytes: &[u8], encoding: Encoding, complete: bool) -> DatasetPeek {
    let syntax = match encoding {
        Encoding::ImplicitVrLittleEndian => Syntax::IMPLICIT_LE,
        Encoding::ExplicitVrLittleEndian | Encoding::Encapsulated => Syntax::EXPLICIT_LE,
        Encoding::ExplicitVrBigEndian => Syntax::EXPLICIT_BE,
        Encoding::DeflatedExplicitVrLittleEndian => return peek_deflated(bytes, complete),
        Encoding::Unknown => {
            return DatasetPeek {
                error: Some(Stop::UnknownSyntax.to_string()),
                ..DatasetPeek::default()
            };
        }
    };
    Walker::new(bytes, syntax, complete).run()
}

/// Inflates a bounded prefix of a raw DEFLATE data set, then peeks at it.
fn peek_deflated(bytes: &[u8], complete: bool) -> DatasetPeek {
    let cap = bytes
        .len()
        .saturating_mul(INFLATE_RATIO)
        .clamp(MIN_INFLATED, MAX_INFLATED);
    let inflated = inflate_prefix(bytes, cap);
    let mut peek = Walker::new(
        &inflated.data,
        Syntax::EXPLICIT_LE,
        complete && inflated.whole && inflated.error.is_none(),
    )
    .run();
    if let Some(e) = inflated.error
        && peek.error.is_none()
    {
        peek.truncated = false;
        peek.error = Some(e.to_string());
    }
    peek
}

struct Inflated {
    data: Vec<u8>,
    /// The deflate stream ended within the output cap.
    whole: bool,
    error: Option<Stop>,
}

/// Inflates at most about `cap` bytes of `input`, growing the output as data arrives (so
/// the allocation follows what was actually inflated, not a guess).
fn inflate_prefix(input: &[u8], cap: usize) -> Inflated {
    const CHUNK: usize = 16 * 1024;
    let mut d = Decompress::new(false);
    let mut data = Vec::new();
    loop {
        if data.len() >= cap {
            return Inflated {
                data,
                whole: false,
                error: None,
            };
        }
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        data.reserve_exact(CHUNK.min(cap - data.len()));
        let out_before = d.total_out();
        match d.decompress_vec(rest, &mut data, FlushDecompress::None) {
            Ok(Status::StreamEnd) => {
                return Inflated {
                    data,
                    whole: true,
                    error: None,
                };
            }
            Ok(Status::Ok | Status::BufError) => {
                let progressed = usize::try_from(d.total_in()).unwrap_or(usize::MAX) != consumed
                    || d.total_out() != out_before;
                if !progressed {
                    return Inflated {
                        data,
                        whole: false,
                        error: None,
                    };
                }
            }
            Err(e) => {
                return Inflated {
                    data,
                    whole: false,
                    error: Some(Stop::Deflate {
                        offset: consumed,
                        message: e.to_string(),
                    }),
                };
            }
        }
    }
}

/// Why the walk stopped before the end of the data set.
#[derive(Debug, thiserror::Error)]
enum Stop {
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
struct Syntax {
    explicit: bool,
    big_endian: bool,
}

impl Syntax {
    const IMPLICIT_LE: Syntax = Syntax {
        explicit: false,
        big_endian: false,
    };
    const EXPLICIT_LE: Syntax = Syntax {
        explicit: true,
        big_endian: false,
    };
    const EXPLICIT_BE: Syntax = Syntax {
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

type Vr = [u8; 2];

struct Walker<'a> {
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
    fn new(buf: &'a [u8], top: Syntax, complete: bool) -> Self {
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

    fn run(mut self) -> DatasetPeek {
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

/// The VR of a tag in Implicit VR, where the wire does not say: private creators are LO,
/// group lengths UL, other standard tags from the dictionary, anything else UN.
fn implicit_vr(group: u16, element: u16) -> Vr {
    if element == 0x0000 {
        return *b"UL";
    }
    if group % 2 == 1 {
        return if matches!(element, 0x0010..=0x00FF) {
            *b"LO"
        } else {
            *b"UN"
        };
    }
    StandardDataDictionary
        .by_tag(Tag(group, element))
        .and_then(|entry| entry.vr().exact())
        .and_then(|vr| vr.to_string().as_bytes().try_into().ok())
        .unwrap_or(*b"UN")
}

/// VRs with a 2-byte length in explicit VR encodings (PS3.5 Table 7.1-2).
fn is_short_form(vr: &Vr) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// The standard VRs with a 4-byte length in explicit VR encodings.
fn is_long_form(vr: &Vr) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// A short value as reported: at most [`MAX_KEPT`] bytes, UI/CS padding (NUL, space)
/// removed, anything not UTF-8 replaced rather than refused.
fn kept_text(value: &[u8]) -> String {
    let value = value.get(..MAX_KEPT).unwrap_or(value);
    String::from_utf8_lossy(value)
        .trim_end_matches(['\0', ' '])
        .trim_start_matches(' ')
        .to_owned()
}

/// The values of (0008,0005), split on backslash. An empty first value (the default
/// repertoire in G0 before code extensions) is kept; an empty attribute gives no values.
fn charset_terms(value: &[u8]) -> Vec<String> {
    let text = kept_text(value);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\\')
        .take(MAX_LISTED)
        .map(|t| t.trim_matches(' ').to_owned())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Builds data sets element by element in one syntax.
    struct Ds {
        syntax: Syntax,
        bytes: Vec<u8>,
    }

    impl Ds {
        fn new(syntax: Syntax) -> Self {
            Ds {
                syntax,
                bytes: Vec::new(),
            }
        }

        fn u16(&mut self, v: u16) {
            let b = if self.syntax.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }

        fn u32(&mut self, v: u32) {
            let b = if self.syntax.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }

        fn header(&mut self, group: u16, element: u16, vr: &str, length: u32) -> &mut Self {
            self.u16(group);
            self.u16(element);
            if self.syntax.explicit {
                self.bytes.extend_from_slice(vr.as_bytes());
                if is_short_form(&vr.as_bytes().try_into().unwrap()) {
                    self.u16(u16::try_from(length).unwrap());
                } else {
                    self.u16(0);
                    self.u32(length);
                }
            } else {
                self.u32(length);
            }
            self
        }

        /// An element; odd-length values are padded as their VR requires.
        fn el(&mut self, group: u16, element: u16, vr: &str, value: &[u8]) -> &mut Self {
            let mut value = value.to_vec();
            if value.len() % 2 == 1 {
                value.push(if vr == "UI" { 0 } else { b' ' });
            }
            self.header(group, element, vr, u32::try_from(value.len()).unwrap());
            self.bytes.extend_from_slice(&value);
            self
        }

        fn seq_undefined(&mut self, group: u16, element: u16) -> &mut Self {
            self.header(group, element, "SQ", UNDEFINED)
        }

        fn delim(&mut self, element: u16, length: u32) -> &mut Self {
            self.u16(0xFFFE);
            self.u16(element);
            self.u32(length);
            self
        }

        fn item(&mut self) -> &mut Self {
            self.delim(0xE000, UNDEFINED)
        }

        fn item_end(&mut self) -> &mut Self {
            self.delim(0xE00D, 0)
        }

        fn seq_end(&mut self) -> &mut Self {
            self.delim(0xE0DD, 0)
        }
    }

    const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";
    const SOP_INSTANCE: &str = "1.2.3.4.5.6.7";

    /// A small data set with everything the peek reports, in `syntax`.
    fn sample(syntax: Syntax) -> Vec<u8> {
        let mut ds = Ds::new(syntax);
        ds.el(0x0008, 0x0005, "CS", b"ISO_IR 100")
            .el(0x0008, 0x0016, "UI", SOP_CLASS.as_bytes())
            .el(0x0008, 0x0018, "UI", SOP_INSTANCE.as_bytes())
            .el(0x0008, 0x0060, "CS", b"OT")
            .el(0x0010, 0x0010, "PN", b"Buc^J\xE9r\xF4me")
            .el(0x0020, 0x000D, "UI", b"1.2.3.100")
            .el(0x0020, 0x000E, "UI", b"1.2.3.101")
            .el(0x0029, 0x0010, "LO", b"ACME 1.0")
            .el(0x0029, 0x1001, "UN", &[1, 2, 3, 4]);
        ds.bytes
    }

    fn assert_sample(p: &DatasetPeek) {
        assert_eq!(p.error, None);
        assert_eq!(p.sop_class_uid.as_deref(), Some(SOP_CLASS));
        assert_eq!(p.sop_instance_uid.as_deref(), Some(SOP_INSTANCE));
        assert_eq!(p.study_instance_uid.as_deref(), Some("1.2.3.100"));
        assert_eq!(p.series_instance_uid.as_deref(), Some("1.2.3.101"));
        assert_eq!(p.modality.as_deref(), Some("OT"));
        assert_eq!(p.specific_character_set, vec!["ISO_IR 100".to_owned()]);
        assert!(p.unchecked_character_sets.is_empty());
        assert_eq!(p.invalid_text, vec![]);
        assert_eq!(
            p.private_creators,
            vec![PrivateCreator {
                group: 0x0029,
                block: 0x10,
                creator: "ACME 1.0".to_owned(),
                in_sequence: false,
            }]
        );
    }

    #[test]
    fn implicit_explicit_and_big_endian() {
        for syntax in [
            Syntax::IMPLICIT_LE,
            Syntax::EXPLICIT_LE,
            Syntax::EXPLICIT_BE,
        ] {
            let bytes = sample(syntax);
            let encoding = match syntax {
                Syntax::IMPLICIT_LE => Encoding::ImplicitVrLittleEndian,
                Syntax::EXPLICIT_LE => Encoding::ExplicitVrLittleEndian,
                _ => Encoding::ExplicitVrBigEndian,
            };
            let p = peek_dataset(&bytes, encoding, true);
            assert_sample(&p);
            assert_eq!(p.examined, bytes.len());
            assert!(!p.truncated);
            // Without `complete`, the end of the buffer may not be the end of the data set.
            let p = peek_dataset(&bytes, encoding, false);
            assert_sample(&p);
            assert!(p.truncated);
        }
    }

    #[test]
    fn encapsulated_stops_at_pixel_data() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.bytes = sample(Syntax::EXPLICIT_LE);
        let pixel_at = ds.bytes.len();
        ds.header(0x7FE0, 0x0010, "OB", UNDEFINED)
            .delim(0xE000, 0)
            .delim(0xE000, 4);
        ds.bytes.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        // What follows the first fragments is never looked at.
        let p = peek_dataset(&ds.bytes, Encoding::Encapsulated, false);
        assert_sample(&p);
        assert_eq!(p.examined, pixel_at);
        assert!(!p.truncated);
    }

    #[test]
    fn nested_undefined_length_sequences() {
        for syntax in [
            Syntax::IMPLICIT_LE,
            Syntax::EXPLICIT_LE,
            Syntax::EXPLICIT_BE,
        ] {
            let mut ds = Ds::new(syntax);
            ds.el(0x0008, 0x0005, "CS", b"ISO_IR 100")
                .el(0x0008, 0x0018, "UI", SOP_INSTANCE.as_bytes())
                // Referenced Series Sequence > item > Referenced Instance Sequence > item
                .seq_undefined(0x0008, 0x1115)
                .item()
                .el(0x0020, 0x000E, "UI", b"9.9.9")
                .seq_undefined(0x0008, 0x114A)
                .item()
                .el(0x0008, 0x1155, "UI", b"9.9.9.1")
                .el(0x0009, 0x0010, "LO", b"NESTED")
                .el(0x0008, 0x0104, "LO", "Jérôme".as_bytes())
                .item_end()
                .item()
                .item_end()
                .seq_end()
                .item_end()
                .seq_end()
                .el(0x0008, 0x0060, "CS", b"MR")
                .el(0x0010, 0x0010, "PN", b"Doe^J\xE9r\xF4me");
            let p = peek_dataset(&ds.bytes, encoding_for(syntax), true);
            assert_eq!(p.error, None, "{syntax:?}");
            assert_eq!(p.sop_instance_uid.as_deref(), Some(SOP_INSTANCE));
            // (0020,000E) inside an item is not the data set's series.
            assert_eq!(p.series_instance_uid, None);
            assert_eq!(p.modality.as_deref(), Some("MR"));
            assert_eq!(p.private_creators.len(), 1);
            assert!(p.private_creators[0].in_sequence);
            assert_eq!(p.invalid_text.len(), 1, "{:?}", p.invalid_text);
            assert_eq!(p.invalid_text[0].tag, "(0008,0104)");
            assert_eq!(
                p.invalid_text[0].reason,
                "looks like UTF-8 under ISO_IR 100"
            );
            assert_eq!(p.examined, ds.bytes.len());
        }
    }

    fn encoding_for(syntax: Syntax) -> Encoding {
        match syntax {
            Syntax::IMPLICIT_LE => Encoding::ImplicitVrLittleEndian,
            Syntax::EXPLICIT_LE => Encoding::ExplicitVrLittleEndian,
            _ => Encoding::ExplicitVrBigEndian,
        }
    }

    #[test]
    fn defined_length_sequence_and_item() {
        let mut inner = Ds::new(Syntax::EXPLICIT_LE);
        inner.el(0x0008, 0x1150, "UI", SOP_CLASS.as_bytes());
        inner.el(0x0008, 0x0018, "UI", b"6.6.6");
        let mut item = Ds::new(Syntax::EXPLICIT_LE);
        item.delim(0xE000, u32::try_from(inner.bytes.len()).unwrap());
        item.bytes.extend_from_slice(&inner.bytes);
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.header(
            0x0008,
            0x1140,
            "SQ",
            u32::try_from(item.bytes.len()).unwrap(),
        );
        ds.bytes.extend_from_slice(&item.bytes);
        ds.el(0x0008, 0x0060, "CS", b"CT");
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(p.error, None);
        assert_eq!(p.sop_instance_uid, None);
        assert_eq!(p.modality.as_deref(), Some("CT"));

        // An item longer than its sequence is an error, not a read past the sequence.
        let mut bad = ds.bytes.clone();
        bad[12 + 4] += 2;
        let p = peek_dataset(&bad, Encoding::ExplicitVrLittleEndian, true);
        assert!(p.error.unwrap().contains("overruns"));
    }

    #[test]
    fn un_of_undefined_length_is_implicit_little_endian() {
        let mut inner = Ds::new(Syntax::IMPLICIT_LE);
        inner
            .item()
            .el(0x0008, 0x0100, "SH", b"T-04000")
            .el(0x0008, 0x0104, "LO", b"bad\x85")
            .item_end()
            .seq_end();
        for syntax in [Syntax::EXPLICIT_LE, Syntax::EXPLICIT_BE] {
            let mut ds = Ds::new(syntax);
            ds.header(0x0040, 0xA043, "UN", UNDEFINED);
            ds.bytes.extend_from_slice(&inner.bytes);
            ds.el(0x0008, 0x0060, "CS", b"SR");
            let p = peek_dataset(&ds.bytes, encoding_for(syntax), true);
            assert_eq!(p.error, None);
            assert_eq!(p.modality.as_deref(), Some("SR"));
            assert_eq!(p.invalid_text.len(), 1);
            assert_eq!(p.invalid_text[0].byte_offset, 3);
        }
    }

    #[test]
    fn item_level_character_set() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.el(0x0008, 0x0005, "CS", b"ISO_IR 100")
            .seq_undefined(0x0040, 0x0275)
            .item()
            .el(0x0008, 0x0005, "CS", b"ISO_IR 192")
            .el(0x0032, 0x1060, "LO", "Jérôme".as_bytes())
            .item_end()
            .item()
            .el(0x0008, 0x0005, "CS", b"\\ISO 2022 IR 87")
            .item_end()
            .seq_end()
            .el(0x0010, 0x0010, "PN", "Jérôme".as_bytes());
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(p.error, None);
        assert_eq!(p.specific_character_set, vec!["ISO_IR 100".to_owned()]);
        assert_eq!(
            p.unchecked_character_sets,
            vec!["ISO 2022 IR 87".to_owned()]
        );
        // Valid inside the UTF-8 item, mislabelled at the top level.
        assert_eq!(p.invalid_text.len(), 1);
        assert_eq!(p.invalid_text[0].tag, "(0010,0010)");
    }

    #[test]
    fn character_set_values() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.el(0x0008, 0x0005, "CS", b"\\ISO 2022 IR 87").el(
            0x0010,
            0x0010,
            "PN",
            b"\x1B$B;3ED\x1B(B",
        );
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(
            p.specific_character_set,
            vec![String::new(), "ISO 2022 IR 87".to_owned()]
        );
        assert_eq!(
            p.unchecked_character_sets,
            vec!["ISO 2022 IR 87".to_owned()]
        );
        assert_eq!(p.invalid_text, vec![]);
        // No (0008,0005): the default repertoire, where ESC and 8-bit bytes are invalid.
        let mut ds = Ds::new(Syntax::IMPLICIT_LE);
        ds.el(0x0010, 0x0010, "PN", b"\x1B$B;3ED\x1B(B");
        let p = peek_dataset(&ds.bytes, Encoding::ImplicitVrLittleEndian, true);
        assert!(p.specific_character_set.is_empty());
        assert_eq!(p.invalid_text.len(), 1);
        assert_eq!(p.invalid_text[0].vr, "PN");
        assert_eq!(p.invalid_text[0].byte_offset, 0);
    }

    #[test]
    fn truncated_element() {
        let bytes = sample(Syntax::EXPLICIT_LE);
        // Cut inside the patient name value (after the 4 elements before it).
        let cut = 8 + 10 + 8 + 26 + 8 + 14 + 8 + 2 + 8 + 3;
        let p = peek_dataset(&bytes[..cut], Encoding::ExplicitVrLittleEndian, false);
        assert!(p.truncated);
        assert_eq!(p.error, None);
        assert_eq!(p.sop_instance_uid.as_deref(), Some(SOP_INSTANCE));
        assert_eq!(p.modality.as_deref(), Some("OT"));
        assert_eq!(p.study_instance_uid, None);
        assert_eq!(p.examined, cut - 8 - 3);
        let p = peek_dataset(&bytes[..cut], Encoding::ExplicitVrLittleEndian, true);
        assert!(!p.truncated);
        assert_eq!(
            p.error.as_deref(),
            Some("bad element length at offset 84: (0010,0010) declares 10 bytes, 3 remain")
        );
        // Cut inside a header.
        let p = peek_dataset(&bytes[..cut - 5], Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(
            p.error.as_deref(),
            Some("data set ends inside an element header at offset 84")
        );
    }

    #[test]
    fn unclosed_sequence() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.el(0x0008, 0x0060, "CS", b"OT")
            .seq_undefined(0x0008, 0x1115)
            .item()
            .el(0x0020, 0x000E, "UI", b"9.9.9");
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, false);
        assert!(p.truncated);
        assert_eq!(p.error, None);
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(
            p.error.as_deref(),
            Some("data set ends inside a sequence or item opened at offset 22")
        );
    }

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn deflated() {
        let bytes = sample(Syntax::EXPLICIT_LE);
        let z = deflate(&bytes);
        let p = peek_dataset(&z, Encoding::DeflatedExplicitVrLittleEndian, true);
        assert_sample(&p);
        assert_eq!(p.examined, bytes.len());
        assert!(!p.truncated);
        // A prefix of the stream gives a prefix of the data set.
        let p = peek_dataset(
            &z[..z.len() / 2],
            Encoding::DeflatedExplicitVrLittleEndian,
            false,
        );
        assert_eq!(p.error, None);
        assert!(p.truncated);
        assert!(p.examined < bytes.len());
        // Not a deflate stream at all.
        let p = peek_dataset(&[0xFF; 64], Encoding::DeflatedExplicitVrLittleEndian, true);
        assert!(p.error.unwrap().starts_with("deflate stream corrupt"));
    }

    #[test]
    fn deflate_bomb_is_bounded() {
        // 64 MiB of one long OB value compresses to ~64 KiB; only a bounded prefix is
        // inflated, so the peek reports a truncated value rather than allocating 64 MiB.
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.header(0x0009, 0x1001, "OB", 64 << 20);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &ds.bytes).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        let z = enc.finish().unwrap();
        let p = peek_dataset(&z, Encoding::DeflatedExplicitVrLittleEndian, true);
        assert!(p.truncated);
        assert_eq!(p.error, None);
        assert_eq!(p.examined, 0);
        let inflated = inflate_prefix(&z, MAX_INFLATED);
        assert!(inflated.data.len() <= MAX_INFLATED);
        assert!(!inflated.whole);
    }

    #[test]
    fn unknown_encoding() {
        let p = peek_dataset(&sample(Syntax::EXPLICIT_LE), Encoding::Unknown, true);
        assert_eq!(p.error.as_deref(), Some("transfer syntax not known"));
        assert_eq!(p.examined, 0);
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        for _ in 0..1000 {
            ds.seq_undefined(0x0008, 0x1115).item();
        }
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert!(p.error.unwrap().starts_with("sequences nested deeper"));
    }

    #[test]
    fn bad_vr_and_stray_delimiter() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        ds.el(0x0008, 0x0060, "CS", b"OT");
        let mut bad = ds.bytes.clone();
        bad.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, b'p', b'n', 0, 0]);
        let p = peek_dataset(&bad, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(
            p.error.as_deref(),
            Some("invalid VR bytes 70 6E at offset 10")
        );
        assert_eq!(p.modality.as_deref(), Some("OT"));
        ds.item_end();
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(
            p.error.as_deref(),
            Some("unexpected (FFFE,E00D) at offset 10 at the top level of the data set")
        );
    }

    #[test]
    fn lists_are_capped() {
        let mut ds = Ds::new(Syntax::EXPLICIT_LE);
        for group in (0x0009..0x0209).step_by(2) {
            ds.el(group, 0x0010, "LO", b"\xFF");
        }
        let p = peek_dataset(&ds.bytes, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(p.error, None);
        assert_eq!(p.private_creators.len(), MAX_LISTED);
        assert_eq!(p.invalid_text.len(), MAX_LISTED);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            which in 0usize..6,
            complete in proptest::prelude::any::<bool>(),
        ) {
            let encoding = [
                Encoding::ImplicitVrLittleEndian,
                Encoding::ExplicitVrLittleEndian,
                Encoding::ExplicitVrBigEndian,
                Encoding::DeflatedExplicitVrLittleEndian,
                Encoding::Encapsulated,
                Encoding::Unknown,
            ][which];
            let p = peek_dataset(&bytes, encoding, complete);
            if encoding != Encoding::DeflatedExplicitVrLittleEndian {
                proptest::prop_assert!(p.examined <= bytes.len());
            }
            proptest::prop_assert!(p.invalid_text.len() <= MAX_LISTED);
        }

        #[test]
        fn mutated_data_sets_never_panic(
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
            cut in 0usize..4096,
            which in 0usize..3,
        ) {
            let syntax = [Syntax::IMPLICIT_LE, Syntax::EXPLICIT_LE, Syntax::EXPLICIT_BE][which];
            let mut ds = Ds::new(syntax);
            ds.bytes = sample(syntax);
            ds.seq_undefined(0x0008, 0x1115).item().el(0x0008, 0x1155, "UI", b"1.2").item_end().seq_end();
            let mut bytes = ds.bytes;
            for (at, v) in flips {
                let len = bytes.len();
                bytes[at % len] = v;
            }
            bytes.truncate(cut.min(bytes.len()));
            let p = peek_dataset(&bytes, encoding_for(syntax), cut % 2 == 0);
            proptest::prop_assert!(p.examined <= bytes.len());
            let z = deflate(&bytes);
            let _ = peek_dataset(&z, Encoding::DeflatedExplicitVrLittleEndian, true);
        }
    }
}

/// Tests on real Part-10 files from pydicom's test data (installed into the project's
/// virtual environment by `scripts/install-test-peers.sh`). The expected values were read
/// from the same files with pydicom (`pydicom.dcmread(path, stop_before_pixels=True)`).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod real_files {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::syntax::encoding_of;

    /// pydicom's `data` directory. Missing test peers fail the test: a silent pass would
    /// hide that the character set checks never met real data.
    fn pydicom_data() -> PathBuf {
        let venv = std::env::var_os("DICOMTAP_VENV").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"),
            PathBuf::from,
        );
        let lib = venv.join("lib");
        let python = std::fs::read_dir(&lib).ok().and_then(|dir| {
            dir.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
            })
        });
        let data = python.map(|p| p.join("site-packages/pydicom/data"));
        match data {
            Some(data) if data.is_dir() => data,
            _ => panic!(
                "pydicom test data not found under {} (set DICOMTAP_VENV or run scripts/install-test-peers.sh)",
                venv.display()
            ),
        }
    }

    /// Splits a Part-10 file into its transfer syntax UID and the data set after the
    /// (explicit VR little endian) group 0002 meta elements.
    fn split_part10(file: &[u8]) -> Option<(String, &[u8])> {
        if file.get(128..132)? != b"DICM" {
            return None;
        }
        let mut pos = 132;
        let mut ts = None;
        while file.get(pos..pos + 2)? == [0x02, 0x00] {
            let element = u16::from_le_bytes(file.get(pos + 2..pos + 4)?.try_into().ok()?);
            let vr: [u8; 2] = file.get(pos + 4..pos + 6)?.try_into().ok()?;
            let (len, header) = if is_short_form(&vr) {
                let l = u16::from_le_bytes(file.get(pos + 6..pos + 8)?.try_into().ok()?);
                (usize::from(l), 8)
            } else {
                let l = u32::from_le_bytes(file.get(pos + 8..pos + 12)?.try_into().ok()?);
                (usize::try_from(l).ok()?, 12)
            };
            let value = file.get(pos + header..pos + header + len)?;
            if element == 0x0010 {
                ts = Some(kept_text(value));
            }
            pos += header + len;
        }
        Some((ts?, file.get(pos..)?))
    }

    fn load(dir: &str, name: &str) -> (String, Vec<u8>) {
        let path = pydicom_data().join(dir).join(name);
        let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (ts, data) = split_part10(&file).expect("a Part-10 file");
        (ts, data.to_vec())
    }

    fn peek_file(dir: &str, name: &str) -> DatasetPeek {
        let (ts, data) = load(dir, name);
        peek_dataset(&data, encoding_of(&ts), true)
    }

    /// Replaces the value of the top-level (0008,0005) in an explicit VR little endian
    /// data set by `term` (same length), as a device mis-declaring its text would.
    fn redeclare(data: &mut [u8], from: &str, to: &str) {
        assert_eq!(from.len(), to.len());
        let mut header = vec![0x08, 0x00, 0x05, 0x00, b'C', b'S'];
        header.extend_from_slice(&u16::try_from(from.len()).unwrap().to_le_bytes());
        header.extend_from_slice(from.as_bytes());
        let at = data
            .windows(header.len())
            .position(|w| w == header)
            .expect("(0008,0005) with the expected value");
        data[at + 8..at + 8 + to.len()].copy_from_slice(to.as_bytes());
    }

    #[test]
    fn declared_character_sets_of_real_files() {
        // (file, declared value as pydicom reads it): all of these are valid in their set.
        for (name, declared) in [
            ("chrFren.dcm", "ISO_IR 100"),
            ("chrGerm.dcm", "ISO_IR 100"),
            ("chrArab.dcm", "ISO_IR 127"),
            ("chrGreek.dcm", "ISO_IR 126"),
            ("chrHbrw.dcm", "ISO_IR 138"),
            ("chrRuss.dcm", "ISO_IR 144"),
            ("chrX1.dcm", "ISO_IR 192"),
            ("chrX2.dcm", "GB18030"),
        ] {
            let p = peek_file("charset_files", name);
            assert_eq!(p.error, None, "{name}");
            assert_eq!(
                p.specific_character_set,
                vec![declared.to_owned()],
                "{name}"
            );
            assert!(p.unchecked_character_sets.is_empty(), "{name}");
            assert_eq!(p.invalid_text, vec![], "{name}");
        }
        // ISO 2022 code extensions (escape sequences into JIS X 0208) are not checked.
        let p = peek_file("charset_files", "chrJapMulti.dcm");
        assert_eq!(
            p.specific_character_set,
            vec![String::new(), "ISO 2022 IR 87".to_owned()]
        );
        assert_eq!(
            p.unchecked_character_sets,
            vec!["ISO 2022 IR 87".to_owned()]
        );
        assert_eq!(p.invalid_text, vec![]);
    }

    #[test]
    fn mis_declared_character_sets_are_invalid() {
        // chrFren.dcm: PatientName "Buc^Jérôme" in Latin-1, declared as UTF-8.
        let (_, mut data) = load("charset_files", "chrFren.dcm");
        redeclare(&mut data, "ISO_IR 100", "ISO_IR 192");
        let p = peek_dataset(&data, Encoding::ExplicitVrLittleEndian, true);
        assert_eq!(p.error, None);
        let name = p
            .invalid_text
            .iter()
            .find(|t| t.tag == "(0010,0010)")
            .unwrap();
        assert_eq!(name.vr, "PN");
        assert_eq!(name.byte_offset, 5);
        assert!(name.reason.contains("not valid UTF-8"), "{}", name.reason);

        // chrX1.dcm: PatientName "Wang^XiaoDong=王^小東" in UTF-8, declared as Latin-1.
        let (_, mut data) = load("charset_files", "chrX1.dcm");
        redeclare(&mut data, "ISO_IR 192", "ISO_IR 100");
        let p = peek_dataset(&data, Encoding::ExplicitVrLittleEndian, true);
        let name = p
            .invalid_text
            .iter()
            .find(|t| t.tag == "(0010,0010)")
            .unwrap();
        assert_eq!(name.reason, "looks like UTF-8 under ISO_IR 100");
        assert_eq!(name.byte_offset, "Wang^XiaoDong=".len());
    }

    #[test]
    fn deflated_real_file() {
        let (ts, data) = load("test_files", "image_dfl.dcm");
        assert_eq!(encoding_of(&ts), Encoding::DeflatedExplicitVrLittleEndian);
        let p = peek_dataset(&data, encoding_of(&ts), true);
        assert_eq!(p.error, None);
        assert!(!p.truncated);
        assert_eq!(
            p.sop_instance_uid.as_deref(),
            Some("1.3.6.1.4.1.5962.1.1.0.0.0.977067309.6001.0")
        );
        assert_eq!(p.modality.as_deref(), Some("OT"));
        // The first PDV of a C-STORE carries a prefix of the stream: same header facts.
        let p = peek_dataset(&data[..data.len().min(300)], encoding_of(&ts), false);
        assert_eq!(p.error, None);
        assert_eq!(
            p.sop_instance_uid.as_deref(),
            Some("1.3.6.1.4.1.5962.1.1.0.0.0.977067309.6001.0")
        );
    }

    #[test]
    fn encapsulated_real_file() {
        let (ts, data) = load("test_files", "JPEG-lossy.dcm");
        assert_eq!(ts, "1.2.840.10008.1.2.4.51");
        let p = peek_dataset(&data, encoding_of(&ts), true);
        assert_eq!(p.error, None);
        assert_eq!(
            p.sop_instance_uid.as_deref(),
            Some("1.3.6.1.4.1.5962.1.1.8.1.5.20040826185059.5457")
        );
        assert_eq!(p.modality.as_deref(), Some("NM"));
        let creators: Vec<_> = p
            .private_creators
            .iter()
            .map(|c| (c.group, c.block, c.creator.as_str()))
            .collect();
        assert_eq!(
            creators,
            [
                (0x0009, 0x10, "GEMS_GENIE_1"),
                (0x0011, 0x10, "GEMS_GENIE_1"),
                (0x0013, 0x10, "GEMS_GENIE_1"),
            ]
        );
        // Stopped at Pixel Data, whose fragments were not looked at.
        assert!(p.examined < data.len());
        assert_eq!(
            data.get(p.examined..p.examined + 4),
            Some(&[0xE0, 0x7F, 0x10, 0x00][..])
        );
    }

    #[test]
    fn implicit_data_set_under_explicit_syntax() {
        // SC_rgb_jpeg.dcm declares JPEG Baseline but its data set is Implicit VR.
        let p = peek_file("test_files", "SC_rgb_jpeg.dcm");
        assert_eq!(p.error, None);
        assert_eq!(p.encoding_found, Some(Encoding::ImplicitVrLittleEndian));
        assert_eq!(
            p.sop_instance_uid.as_deref(),
            Some("1.2.826.0.1.3680043.8.498.13002811185086637637347356263722492924")
        );
    }

    /// Every Part-10 file of pydicom's test data, peeked, against what pydicom reads.
    #[test]
    fn every_real_file_agrees_with_pydicom() {
        let data = pydicom_data();
        let script = r#"
import os, sys, warnings
warnings.simplefilter("ignore")
import pydicom
root = sys.argv[1]
for d in ("charset_files", "test_files"):
    for name in sorted(os.listdir(os.path.join(root, d))):
        if not name.endswith(".dcm"):
            continue
        try:
            ds = pydicom.dcmread(os.path.join(root, d, name), stop_before_pixels=True)
        except Exception:
            continue
        cs = ds.get("SpecificCharacterSet", "")
        cs = "\\".join(cs) if isinstance(cs, (list, pydicom.multival.MultiValue)) else cs
        print("\t".join([d + "/" + name, str(ds.get("SOPClassUID", "")),
                         str(ds.get("SOPInstanceUID", "")), str(ds.get("Modality", "")), cs]))
"#;
        // <venv>/lib/python3.x/site-packages/pydicom/data
        let venv = data.ancestors().nth(5).unwrap().to_path_buf();
        let out = std::process::Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(script)
            .arg(&data)
            .output()
            .expect("run pydicom");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut compared = 0;
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let [path, class, instance, modality, charset] = f[..] else {
                panic!("bad line {line}");
            };
            let file = std::fs::read(data.join(path)).unwrap();
            let Some((ts, set)) = split_part10(&file) else {
                continue;
            };
            let p = peek_dataset(set, encoding_of(&ts), true);
            if path.ends_with("rtplan_truncated.dcm") {
                // Really truncated: the peek says where.
                assert_eq!(
                    p.error.as_deref(),
                    Some(
                        "bad element length at offset 1110: (300A,00B0) declares 976 bytes, 711 remain"
                    )
                );
            } else {
                assert_eq!(p.error, None, "{path}");
                assert!(!p.truncated, "{path}");
            }
            let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            assert_eq!(p.sop_class_uid, opt(class), "{path}");
            assert_eq!(p.sop_instance_uid, opt(instance), "{path}");
            assert_eq!(p.modality, opt(modality), "{path}");
            assert_eq!(p.specific_character_set.join("\\"), charset, "{path}");
            // pydicom's own test files are valid in their declared sets.
            assert_eq!(p.invalid_text, vec![], "{path}");
            compared += 1;
        }
        assert!(compared > 80, "only {compared} files compared");
    }
}
