//! Specific Character Set (0008,0005): whether text values are valid in the declared set.
//!
//! Mis-declared character sets are among the most common interoperability faults between
//! DICOM devices (a modality writing UTF-8 while declaring ISO_IR 100, or writing Latin-1
//! while declaring ISO_IR 192), and they corrupt patient names downstream. This module
//! checks bytes against the declared repertoire without decoding them into strings.
//!
//! Checked: the default repertoire, the single-byte ISO 8859 parts, JIS X 0201 (ISO_IR
//! 13), TIS 620 (ISO_IR 166), UTF-8 (ISO_IR 192) and the byte structure of GB18030 and
//! GBK. Not checked: ISO 2022 code extensions (multi-valued (0008,0005) or "ISO 2022 IR"
//! terms), where escape sequences switch sets mid-value; callers report those as
//! unchecked via [`declared`].

use serde::Serialize;

/// A character repertoire whose byte-level validity this module can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repertoire {
    /// ISO_IR 6 / no (0008,0005): ISO 646 (US-ASCII) graphic characters.
    Default,
    /// A single-byte ISO 8859 part (ISO_IR 100, 101, 109, 110, 144, 127, 126, 138, 148,
    /// 203), ASCII in GL and the part's characters in GR.
    Iso8859(u8),
    /// ISO_IR 13: JIS X 0201 Romaji in GL, half-width Katakana (0xA1-0xDF) in GR.
    JisX0201,
    /// ISO_IR 166: TIS 620-2533 Thai in GR.
    Tis620,
    /// ISO_IR 192: UTF-8.
    Utf8,
    /// GB18030: byte structure (1, 2 and 4-byte sequences) is checked.
    Gb18030,
    /// GBK: byte structure (1 and 2-byte sequences) is checked.
    Gbk,
}

/// The repertoire of one defined term of (0008,0005), or `None` for terms that are not
/// checked: ISO 2022 terms (they announce code extensions) and unknown terms.
pub fn repertoire(term: &str) -> Option<Repertoire> {
    let rep = match term.trim_matches(' ') {
        // "ISO_IR 6" is not a defined term, but devices send it meaning the default.
        "" | "ISO_IR 6" => Repertoire::Default,
        "ISO_IR 100" => Repertoire::Iso8859(1),
        "ISO_IR 101" => Repertoire::Iso8859(2),
        "ISO_IR 109" => Repertoire::Iso8859(3),
        "ISO_IR 110" => Repertoire::Iso8859(4),
        "ISO_IR 144" => Repertoire::Iso8859(5),
        "ISO_IR 127" => Repertoire::Iso8859(6),
        "ISO_IR 126" => Repertoire::Iso8859(7),
        "ISO_IR 138" => Repertoire::Iso8859(8),
        "ISO_IR 148" => Repertoire::Iso8859(9),
        "ISO_IR 203" => Repertoire::Iso8859(15),
        "ISO_IR 13" => Repertoire::JisX0201,
        "ISO_IR 166" => Repertoire::Tis620,
        "ISO_IR 192" => Repertoire::Utf8,
        "GB18030" => Repertoire::Gb18030,
        "GBK" => Repertoire::Gbk,
        _ => return None,
    };
    Some(rep)
}

/// Whether text declared with this single term can be checked.
pub fn is_checked(term: &str) -> bool {
    repertoire(term).is_some()
}

/// What a whole (0008,0005) value declares, for checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    /// One repertoire, checkable; `term` is the declared term, for messages.
    Checked {
        repertoire: Repertoire,
        term: String,
    },
    /// Code extensions, an unknown term, or several values: the terms that make it so.
    Unchecked(Vec<String>),
}

/// Interprets the values of (0008,0005). An absent or empty value is the default
/// repertoire; several values mean ISO 2022 code extensions, which are not checked.
pub fn declared(charsets: &[String]) -> Declared {
    let non_empty: Vec<&str> = charsets
        .iter()
        .map(|s| s.trim_matches(' '))
        .filter(|s| !s.is_empty())
        .collect();
    match (charsets.len(), non_empty.as_slice()) {
        (_, []) => Declared::Checked {
            repertoire: Repertoire::Default,
            term: String::new(),
        },
        (1, [term]) => match repertoire(term) {
            Some(repertoire) => Declared::Checked {
                repertoire,
                term: (*term).to_owned(),
            },
            None => Declared::Unchecked(vec![(*term).to_owned()]),
        },
        (_, terms) => Declared::Unchecked(terms.iter().map(|t| (*t).to_owned()).collect()),
    }
}

/// Checks a text value of VR `vr` against the declared character sets. `Ok` when the
/// value is valid or the sets are not checkable (ask [`declared`] which); otherwise the
/// offset of the first bad byte and why.
pub fn check_text(charsets: &[String], vr: &str, value: &[u8]) -> Result<(), (usize, String)> {
    match declared(charsets) {
        Declared::Checked { repertoire, term } => check_value(repertoire, &term, vr, value),
        Declared::Unchecked(_) => Ok(()),
    }
}

/// Whether VR `vr` is a text VR whose bytes are subject to (0008,0005). (AE, AS, CS, DA,
/// DS, DT, IS, TM, UI and UR are always in the default repertoire and are not checked.)
pub fn is_text_vr(vr: &str) -> bool {
    matches!(vr, "SH" | "LO" | "ST" | "LT" | "PN" | "UC" | "UT")
}

/// Checks `value` (VR `vr`) against one repertoire; `term` names it in reasons.
pub fn check_value(
    repertoire: Repertoire,
    term: &str,
    vr: &str,
    value: &[u8],
) -> Result<(), (usize, String)> {
    let term = if term.is_empty() {
        "the default repertoire"
    } else {
        term
    };
    let text_block = matches!(vr, "ST" | "LT" | "UT");
    // Single-byte 8-bit sets: a value that is entirely well-formed UTF-8 with multi-byte
    // sequences is almost certainly UTF-8 mislabelled (é as C3 A9 reads "Ã©" in Latin-1).
    if matches!(
        repertoire,
        Repertoire::Iso8859(_) | Repertoire::JisX0201 | Repertoire::Tis620
    ) && let Some(at) = value.iter().position(|b| *b >= 0x80)
        && std::str::from_utf8(value).is_ok()
    {
        return Err((at, format!("looks like UTF-8 under {term}")));
    }
    match repertoire {
        Repertoire::Utf8 => check_utf8(value, text_block),
        Repertoire::Gb18030 => check_gb(value, text_block, true, term),
        Repertoire::Gbk => check_gb(value, text_block, false, term),
        _ => {
            for (at, &b) in value.iter().enumerate() {
                if b < 0x80 {
                    check_ascii(b, text_block).map_err(|r| (at, r))?;
                } else if !gr_assigned(repertoire, b) {
                    let why = if b < 0xA0 {
                        format!("C1 control byte 0x{b:02X} is not allowed in {term}")
                    } else {
                        format!("byte 0x{b:02X} is not a character of {term}")
                    };
                    return Err((at, why));
                }
            }
            Ok(())
        }
    }
}

/// A byte below 0x80: ISO 646 graphic characters and, for ST/LT/UT, the format controls
/// PS3.5 6.1.3 allows. ESC is only meaningful with ISO 2022 code extensions, which are
/// never checked here, so it is always a fault.
fn check_ascii(b: u8, text_block: bool) -> Result<(), String> {
    match b {
        0x20..=0x7E => Ok(()),
        0x09 | 0x0A | 0x0C | 0x0D if text_block => Ok(()),
        0x00 => Err("NUL byte (text values are padded with spaces)".to_owned()),
        0x1B => Err("ESC without ISO 2022 code extensions declared".to_owned()),
        0x7F => Err("DEL control byte".to_owned()),
        _ => Err(format!("control byte 0x{b:02X} is not allowed in this VR")),
    }
}

/// Whether byte `b` (>= 0x80) is an assigned character in the GR half of `repertoire`.
/// C1 (0x80-0x9F) is never a character in DICOM's single-byte sets.
fn gr_assigned(repertoire: Repertoire, b: u8) -> bool {
    if b < 0xA0 {
        return false;
    }
    match repertoire {
        Repertoire::Default => false,
        Repertoire::Iso8859(3) => !matches!(b, 0xA5 | 0xAE | 0xBE | 0xC3 | 0xD0 | 0xE3 | 0xF0),
        Repertoire::Iso8859(6) => {
            matches!(b, 0xA0 | 0xA4 | 0xAC | 0xAD | 0xBB | 0xBF | 0xC1..=0xDA | 0xE0..=0xF2)
        }
        Repertoire::Iso8859(7) => !matches!(b, 0xAE | 0xD2 | 0xFF),
        Repertoire::Iso8859(8) => matches!(b, 0xA0 | 0xA2..=0xBE | 0xDF..=0xFA | 0xFD | 0xFE),
        Repertoire::Iso8859(_) => true,
        Repertoire::JisX0201 => matches!(b, 0xA1..=0xDF),
        // TIS 620 has no NBSP, ISO 8859-11 (its superset) puts one at 0xA0.
        Repertoire::Tis620 => matches!(b, 0xA0..=0xDA | 0xDF..=0xFB),
        Repertoire::Utf8 | Repertoire::Gb18030 | Repertoire::Gbk => false,
    }
}

fn check_utf8(value: &[u8], text_block: bool) -> Result<(), (usize, String)> {
    let text = match std::str::from_utf8(value) {
        Ok(text) => text,
        Err(e) => {
            let at = e.valid_up_to();
            let b = value.get(at).copied().unwrap_or(0);
            let hint = if e.error_len() == Some(1) && b >= 0xA0 {
                " (Latin-1 text under ISO_IR 192?)"
            } else {
                ""
            };
            return Err((
                at,
                format!("byte 0x{b:02X} is not valid UTF-8 under ISO_IR 192{hint}"),
            ));
        }
    };
    for (at, c) in text.char_indices() {
        if let Ok(b) = u8::try_from(u32::from(c))
            && b < 0x80
        {
            check_ascii(b, text_block).map_err(|r| (at, r))?;
        } else if ('\u{80}'..='\u{9F}').contains(&c) {
            return Err((
                at,
                format!("C1 control U+{:04X} in UTF-8 text", u32::from(c)),
            ));
        }
    }
    Ok(())
}

/// GB18030 / GBK byte structure: ASCII, two-byte (lead 81-FE, trail 40-7E or 80-FE) and,
/// for GB18030, four-byte (81-FE 30-39 81-FE 30-39) sequences.
fn check_gb(value: &[u8], text_block: bool, four: bool, term: &str) -> Result<(), (usize, String)> {
    let mut at = 0;
    while let Some(&b) = value.get(at) {
        if b < 0x80 {
            check_ascii(b, text_block).map_err(|r| (at, r))?;
            at += 1;
            continue;
        }
        let bad = || (at, format!("malformed {term} sequence at byte 0x{b:02X}"));
        if !(0x81..=0xFE).contains(&b) {
            return Err(bad());
        }
        match value.get(at + 1).copied() {
            Some(0x40..=0x7E | 0x80..=0xFE) => at += 2,
            Some(0x30..=0x39) if four => {
                let rest = (value.get(at + 2).copied(), value.get(at + 3).copied());
                match rest {
                    (Some(0x81..=0xFE), Some(0x30..=0x39)) => at += 4,
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sets(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn default_repertoire() {
        assert_eq!(check_text(&[], "PN", b"Doe^John"), Ok(()));
        assert_eq!(check_text(&sets(&[""]), "LO", b"abc "), Ok(()));
        let err = check_text(&[], "LO", b"Caf\xE9").unwrap_err();
        assert_eq!(err.0, 3);
        assert_eq!(check_text(&[], "LT", b"line\r\nnext\tx\x0C"), Ok(()));
        assert_eq!(check_text(&[], "LO", b"line\r\n").unwrap_err().0, 4);
        assert!(check_text(&[], "SH", b"\x1B$B").is_err());
        assert!(check_text(&[], "LO", b"abc\0").is_err());
    }

    #[test]
    fn latin1() {
        let l1 = sets(&["ISO_IR 100"]);
        assert_eq!(check_text(&l1, "PN", b"Buc^J\xE9r\xF4me"), Ok(()));
        assert_eq!(check_text(&l1, "PN", b"a\x85b").unwrap_err().0, 1);
        let (at, why) = check_text(&l1, "PN", "Buc^Jérôme".as_bytes()).unwrap_err();
        assert_eq!(at, 5);
        assert_eq!(why, "looks like UTF-8 under ISO_IR 100");
    }

    #[test]
    fn utf8() {
        let u = sets(&["ISO_IR 192"]);
        assert_eq!(
            check_text(&u, "PN", "Wang^XiaoDong=王^小東=".as_bytes()),
            Ok(())
        );
        let (at, why) = check_text(&u, "PN", b"Buc^J\xE9r\xF4me").unwrap_err();
        assert_eq!(at, 5);
        assert!(why.contains("Latin-1"), "{why}");
        assert!(check_text(&u, "LO", "a\u{85}".as_bytes()).is_err());
    }

    #[test]
    fn gaps_in_iso8859_parts() {
        // 0xA1 is unassigned in ISO 8859-8 (Hebrew), assigned in 8859-5 (Cyrillic).
        assert!(check_text(&sets(&["ISO_IR 138"]), "LO", b"\xA1").is_err());
        assert_eq!(check_text(&sets(&["ISO_IR 144"]), "LO", b"\xA1"), Ok(()));
        assert_eq!(check_text(&sets(&["ISO_IR 13"]), "LO", b"\xB1\xDF"), Ok(()));
        assert!(check_text(&sets(&["ISO_IR 13"]), "LO", b"\xE0").is_err());
    }

    #[test]
    fn gb18030_structure() {
        let gb = sets(&["GB18030"]);
        assert_eq!(
            check_text(&gb, "PN", b"Wang^\xCD\xF5\x81\x30\x81\x30"),
            Ok(())
        );
        assert!(check_text(&gb, "PN", b"\xCD").is_err());
        assert!(check_text(&gb, "PN", b"\x81\x30\x81").is_err());
        assert!(check_text(&sets(&["GBK"]), "PN", b"\x81\x30\x81\x30").is_err());
    }

    #[test]
    fn unchecked_sets() {
        assert!(!is_checked("ISO 2022 IR 87"));
        assert!(is_checked("ISO_IR 192"));
        let jp = sets(&["", "ISO 2022 IR 87"]);
        assert_eq!(
            declared(&jp),
            Declared::Unchecked(vec!["ISO 2022 IR 87".to_owned()])
        );
        assert_eq!(check_text(&jp, "PN", b"\x1B$B;3ED"), Ok(()));
        assert!(matches!(
            declared(&sets(&["ISO_IR 100", "ISO_IR 192"])),
            Declared::Unchecked(_)
        ));
    }
}
