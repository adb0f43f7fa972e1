//! Readers: a document's bytes to a [`Document`], the format detected from the content.
//!
//! Every reader is bounded: inputs over [`MAX_INPUT_BYTES`] are refused before they are
//! read, and a reader never allocates from a length it read in the file without
//! checking it against the bytes present.

pub mod detect;
pub mod html;
pub mod pdf;
pub mod text;

use std::path::Path;

use crate::document::{Document, Format};

/// The largest document accepted (real statements are a few MB; 300-page PDFs 2-20 MB).
pub const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Why a document could not be read. Every message names what is wrong in words a user
/// can act on; the caller adds the file name.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("{size} bytes is larger than the {max} bytes a conformance statement may have")]
    TooLarge { size: u64, max: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("not a document dicomtap can read: {0}")]
    UnknownFormat(String),
    #[error(
        "the PDF is encrypted; save an unencrypted copy (e.g. print it to PDF) and import that"
    )]
    Encrypted,
    #[error("the PDF has no text layer (pages {pages} are images only); run OCR on it first")]
    NoText { pages: String },
    #[error("the PDF is damaged: {0}")]
    CorruptPdf(String),
    #[error("the HTML could not be read: {0}")]
    Html(String),
    #[error("the text is not UTF-8, UTF-16 or Latin-1 at byte {0}")]
    Encoding(usize),
}

/// Reads the file at `path` (size checked first).
pub fn read_file(path: &Path) -> Result<Document, ReadError> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge {
            size,
            max: MAX_INPUT_BYTES,
        });
    }
    let bytes = std::fs::read(path)?;
    read_bytes(&bytes, &path.display().to_string())
}

/// Reads a document held in memory; `source` names it in the [`Document`].
pub fn read_bytes(bytes: &[u8], source: &str) -> Result<Document, ReadError> {
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_INPUT_BYTES,
        });
    }
    match detect::detect(bytes)? {
        Format::Pdf => pdf::read(bytes, source),
        Format::Html => html::read(bytes, source),
        f @ (Format::Text | Format::Markdown | Format::Rst) => text::read(bytes, source, f),
    }
}
