//! Plain text, Markdown and reStructuredText reader.

use crate::document::{Document, Format};

use super::ReadError;

/// Reads a text document of the given flavour.
pub fn read(bytes: &[u8], source: &str, format: Format) -> Result<Document, ReadError> {
    let _ = (bytes, source, format);
    Err(ReadError::UnknownFormat(
        "the text reader is not written yet".into(),
    ))
}
