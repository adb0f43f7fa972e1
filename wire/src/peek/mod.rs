//! A bounded peek at the start of a data set: identifying UIDs, modality, character set
//! and whether its text is valid in it, private creators. Pixel data is never decoded.
//!
//! The peek walks data element headers over a borrowed buffer and copies only the few
//! short values it reports. Sequences (defined or undefined length, nested) are walked
//! rather than skipped so that text inside them is checked too; values that are not
//! needed are skipped by their length. Every length read from the buffer is checked
//! against the bytes present (and the enclosing item) before it is used, nothing is
//! allocated from a length, and the walk stops at top-level Pixel Data.
//!
//! The walk over element headers is `walk`; the VRs it has to know, `vr`; the short
//! values it reports and the character set terms, `text`; deflated data sets are
//! inflated a bounded prefix at a time in `deflated`.

use serde::Serialize;

use crate::syntax::Encoding;

mod deflated;
mod text;
mod vr;
mod walk;

#[cfg(test)]
mod real_files;
#[cfg(test)]
mod tests;

use walk::{Stop, Syntax, Walker};

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

/// Peeks at `bytes`, the start of a data set encoded as `encoding`. `complete` says the
/// whole data set is in `bytes` (so running out of bytes is an error, not a limit).
pub fn peek_dataset(bytes: &[u8], encoding: Encoding, complete: bool) -> DatasetPeek {
    let syntax = match encoding {
        Encoding::ImplicitVrLittleEndian => Syntax::IMPLICIT_LE,
        Encoding::ExplicitVrLittleEndian | Encoding::Encapsulated => Syntax::EXPLICIT_LE,
        Encoding::ExplicitVrBigEndian => Syntax::EXPLICIT_BE,
        Encoding::DeflatedExplicitVrLittleEndian => return deflated::peek(bytes, complete),
        Encoding::Unknown => {
            return DatasetPeek {
                error: Some(Stop::UnknownSyntax.to_string()),
                ..DatasetPeek::default()
            };
        }
    };
    Walker::new(bytes, syntax, complete).run()
}
