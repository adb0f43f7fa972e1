//! The short values a peek reports, and the terms of Specific Character Set (0008,0005).

use super::MAX_LISTED;

/// Longest value prefix copied into a reported string (UIs are at most 64 bytes).
const MAX_KEPT: usize = 256;

/// A short value as reported: at most [`MAX_KEPT`] bytes, UI/CS padding (NUL, space)
/// removed, anything not UTF-8 replaced rather than refused.
pub(super) fn kept_text(value: &[u8]) -> String {
    let value = value.get(..MAX_KEPT).unwrap_or(value);
    String::from_utf8_lossy(value)
        .trim_end_matches(['\0', ' '])
        .trim_start_matches(' ')
        .to_owned()
}

/// The values of (0008,0005), split on backslash. An empty first value (the default
/// repertoire in G0 before code extensions) is kept; an empty attribute gives no values.
pub(super) fn charset_terms(value: &[u8]) -> Vec<String> {
    let text = kept_text(value);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\\')
        .take(MAX_LISTED)
        .map(|t| t.trim_matches(' ').to_owned())
        .collect()
}
