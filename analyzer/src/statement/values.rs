//! Vocabularies of the statement format shared with the importers and the drafter:
//! the Specific Character Set terms it accepts and what makes an AE title valid.

/// Specific Character Set defined terms (PS3.3 C.12.1.1.2), plus "ISO_IR 6", which is not
/// a defined term but is what devices write for the default repertoire.
const CHARACTER_SETS: &[&str] = &[
    "ISO_IR 6",
    "ISO_IR 100",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 144",
    "ISO_IR 127",
    "ISO_IR 126",
    "ISO_IR 138",
    "ISO_IR 148",
    "ISO_IR 203",
    "ISO_IR 13",
    "ISO_IR 166",
    "ISO_IR 192",
    "GB18030",
    "GBK",
    "ISO 2022 IR 6",
    "ISO 2022 IR 100",
    "ISO 2022 IR 101",
    "ISO 2022 IR 109",
    "ISO 2022 IR 110",
    "ISO 2022 IR 144",
    "ISO 2022 IR 127",
    "ISO 2022 IR 126",
    "ISO 2022 IR 138",
    "ISO 2022 IR 148",
    "ISO 2022 IR 203",
    "ISO 2022 IR 13",
    "ISO 2022 IR 166",
    "ISO 2022 IR 87",
    "ISO 2022 IR 159",
    "ISO 2022 IR 149",
    "ISO 2022 IR 58",
];

/// Whether `s` is a Specific Character Set defined term this format accepts.
pub fn is_character_set(s: &str) -> bool {
    CHARACTER_SETS.contains(&s)
}

/// PS3.5 AE VR: 1-16 characters of the default repertoire, no backslash or control
/// characters, not only spaces.
pub fn ae_title_problem(s: &str) -> Option<&'static str> {
    if s.trim().is_empty() {
        Some("expected a non-empty AE title")
    } else if s.len() > 16 {
        Some("expected at most 16 characters (AE VR)")
    } else if !s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\') {
        Some("expected printable ASCII without backslash (AE VR)")
    } else {
        None
    }
}
