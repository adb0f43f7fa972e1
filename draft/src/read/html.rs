//! HTML reader.

use crate::document::Document;

use super::ReadError;

/// Reads a HTML document.
pub fn read(bytes: &[u8], source: &str) -> Result<Document, ReadError> {
    let _ = (bytes, source);
    Err(ReadError::UnknownFormat(
        "the HTML reader is not written yet".into(),
    ))
}
