//! Format detection from the content: `%PDF-` magic, an HTML document's markup, or text
//! (with Markdown or reStructuredText recognised by their table and heading syntax).
//!
//! Also the text decoding shared by the text and HTML readers: UTF-8 (with or without
//! a byte order mark), UTF-16 with a byte order mark (or without one when every other
//! byte is NUL), else Windows-1252 (a superset of Latin-1 for the printable range), which
//! is what vendors' text files not in UTF-8 are in practice.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

use crate::document::Format;

use super::ReadError;

/// How far into the file the `%PDF-` header may start (readers accept junk before it).
const PDF_HEADER_WINDOW: usize = 1024;
/// How much of the file the binary check and the HTML sniffing look at.
const SNIFF_BYTES: usize = 64 * 1024;
/// How many lines the Markdown / reStructuredText scoring looks at.
const SNIFF_LINES: usize = 20_000;

/// The format of `bytes`. JSON (a dcm4che configuration) is not a document: the caller
/// checks for it first; here it is refused so that it is never read as text.
pub fn detect(bytes: &[u8]) -> Result<Format, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    let window = &bytes[..bytes.len().min(PDF_HEADER_WINDOW)];
    if find(window, b"%PDF-").is_some() {
        return Ok(Format::Pdf);
    }
    let text = decode(bytes)?.text;
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n', '\u{c}']);
    if trimmed.is_empty() {
        return Err(ReadError::Empty);
    }
    if looks_like_json(trimmed) {
        return Err(ReadError::UnknownFormat(
            "JSON data, not a conformance statement document (a dcm4che device \
             configuration in JSON is imported as a configuration, not read as a document)"
                .into(),
        ));
    }
    if looks_like_html(trimmed) {
        return Ok(Format::Html);
    }
    Ok(text_flavour(trimmed))
}

/// Decoded text and the name of the encoding it was in.
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub encoding: &'static str,
}

/// Decodes a text file: BOM first, then UTF-8 if valid, else Windows-1252. Binary data
/// (NUL bytes, many control bytes, known binary signatures) is refused with what it
/// looks like.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, ReadError> {
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        return decode_with(enc, &bytes[bom_len..], bom_len);
    }
    if let Some(enc) = utf16_without_bom(bytes) {
        return decode_with(enc, bytes, 0);
    }
    check_not_binary(bytes)?;
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Decoded {
            text: Cow::Borrowed(s),
            encoding: "UTF-8",
        }),
        Err(_) => {
            let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
            Ok(Decoded {
                text,
                encoding: "Windows-1252",
            })
        }
    }
}

/// Decodes `bytes` (after any BOM, which was `offset` bytes) with `enc`; malformed
/// UTF-8 or UTF-16 is an [`ReadError::Encoding`] error at the first bad byte.
pub(crate) fn decode_with<'a>(
    enc: &'static Encoding,
    bytes: &'a [u8],
    offset: usize,
) -> Result<Decoded<'a>, ReadError> {
    if enc == UTF_8 {
        check_not_binary(bytes)?;
        return match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Decoded {
                text: Cow::Borrowed(s),
                encoding: "UTF-8",
            }),
            Err(e) => Err(ReadError::Encoding(offset + e.valid_up_to())),
        };
    }
    if enc == UTF_16LE || enc == UTF_16BE {
        if let Some(at) = first_bad_utf16(bytes, enc == UTF_16LE) {
            return Err(ReadError::Encoding(offset + at));
        }
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return Ok(Decoded {
            text,
            encoding: enc.name(),
        });
    }
    check_not_binary(bytes)?;
    let (text, _) = enc.decode_without_bom_handling(bytes);
    Ok(Decoded {
        text,
        encoding: enc.name(),
    })
}

/// The byte offset of the first unpaired surrogate (or a dangling odd byte).
fn first_bad_utf16(bytes: &[u8], little: bool) -> Option<usize> {
    let unit = |i: usize| -> u16 {
        let (a, b) = (bytes[i], bytes[i + 1]);
        if little {
            u16::from_le_bytes([a, b])
        } else {
            u16::from_be_bytes([a, b])
        }
    };
    let n = bytes.len() / 2 * 2;
    let mut i = 0;
    while i < n {
        let u = unit(i);
        if (0xD800..0xDC00).contains(&u) {
            if i + 2 >= n || !(0xDC00..0xE000).contains(&unit(i + 2)) {
                return Some(i);
            }
            i += 4;
        } else if (0xDC00..0xE000).contains(&u) {
            return Some(i);
        } else {
            i += 2;
        }
    }
    if bytes.len() % 2 == 1 {
        return Some(bytes.len() - 1);
    }
    None
}

/// UTF-16 without a byte order mark: in the first kilobyte nearly every other byte is
/// NUL and the others are not (ASCII text in UTF-16).
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(1024) / 2 * 2];
    if sample.len() < 8 {
        return None;
    }
    let pairs = sample.len() / 2;
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        even_nul += usize::from(pair[0] == 0);
        odd_nul += usize::from(pair[1] == 0);
    }
    if odd_nul * 10 >= pairs * 9 && even_nul == 0 {
        Some(UTF_16LE)
    } else if even_nul * 10 >= pairs * 9 && odd_nul == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Refuses binary data: a known binary signature, NUL bytes, or more than 1 % control
/// bytes other than tab, line feed, carriage return, form feed, backspace (man page
/// overstrike) and Ctrl-Z (DOS end of file) in the first 64 KB.
fn check_not_binary(bytes: &[u8]) -> Result<(), ReadError> {
    if let Some(what) = known_binary(bytes) {
        return Err(ReadError::UnknownFormat(what.into()));
    }
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if let Some(at) = sample.iter().position(|&b| b == 0) {
        return Err(ReadError::UnknownFormat(format!(
            "binary data (a NUL byte at byte {at}), not text, HTML or PDF"
        )));
    }
    let controls = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x08 | 0x1a))
        .count();
    if controls * 100 > sample.len() {
        return Err(ReadError::UnknownFormat(format!(
            "binary data ({controls} control bytes in the first {} bytes), not text, HTML or PDF",
            sample.len()
        )));
    }
    Ok(())
}

/// Names the binary formats users are likely to hand in by mistake.
fn known_binary(bytes: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(b"PK\x03\x04") {
        Some(
            "a ZIP archive (a Word .docx or OpenDocument file is one): save the statement \
             as PDF, HTML or text and import that",
        )
    } else if starts(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        Some("an old Microsoft Office file (.doc): save the statement as PDF, HTML or text")
    } else if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Some("a DICOM file, not a conformance statement document")
    } else if starts(b"\x1f\x8b") {
        Some("gzip-compressed data: decompress it first")
    } else if starts(b"\x89PNG") || starts(b"\xff\xd8\xff") || starts(b"GIF8") {
        Some("an image, not a document with text: run OCR on it first")
    } else if starts(b"{\\rtf") {
        Some("an RTF file: save the statement as PDF, HTML or text")
    } else {
        None
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn looks_like_json(t: &str) -> bool {
    if !(t.starts_with('{') || t.starts_with('[')) {
        return false;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
}

/// The markup an HTML document starts with, after an XML prolog and comments.
fn looks_like_html(t: &str) -> bool {
    let mut rest = t;
    // Skip an XML declaration, processing instructions and comments (bounded: each step
    // consumes input).
    loop {
        rest = rest.trim_start();
        if rest.starts_with("<?") {
            match rest.find("?>") {
                Some(end) => rest = &rest[end + 2..],
                None => return false,
            }
        } else if rest.starts_with("<!--") {
            match rest.find("-->") {
                Some(end) => rest = &rest[end + 3..],
                None => return false,
            }
        } else {
            break;
        }
    }
    let head: String = rest
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") {
        return true;
    }
    const TAGS: &[&str] = &[
        "html", "head", "body", "table", "meta", "title", "div", "h1", "h2", "h3", "h4", "h5",
        "h6", "p", "link", "style", "script", "section", "article", "main",
    ];
    let Some(after) = head.strip_prefix('<') else {
        return false;
    };
    TAGS.iter().any(|tag| {
        after.strip_prefix(tag).is_some_and(|r| {
            r.chars()
                .next()
                .is_none_or(|c| c == '>' || c == '/' || c.is_ascii_whitespace())
        })
    })
}

/// Plain text, Markdown or reStructuredText, by what their syntax leaves in the text.
fn text_flavour(t: &str) -> Format {
    let mut rst = 0u32;
    let mut md = 0u32;
    let mut doxygen = false;
    let mut prev = "";
    for line in t.lines().take(SNIFF_LINES) {
        let s = line.trim();
        if s.starts_with("\\page ")
            || s.starts_with("\\section ")
            || s.starts_with("\\subsection ")
            || s == "\\verbatim"
            || s == "/*!"
        {
            doxygen = true;
        }
        if let Some(d) = s.strip_prefix(".. ") {
            // `.. directive::` and `.. _label:` are reStructuredText's own.
            if d.contains("::") || (d.starts_with('_') && d.ends_with(':')) {
                rst += 3;
            }
        }
        if is_grid_border(s) {
            rst += 2;
        }
        if is_simple_table_border(s) {
            rst += 1;
        }
        if s.contains("``") || s.contains(":ref:`") || s.contains(":dcm:`") {
            rst += 1;
        }
        if is_adornment(s) && !prev.trim().is_empty() {
            let c = s.as_bytes()[0];
            if !matches!(c, b'=' | b'-') {
                rst += 2;
            }
        }
        if s.starts_with('#') {
            let hashes = s.bytes().take_while(|&b| b == b'#').count();
            if hashes <= 6 && s[hashes..].starts_with(' ') {
                md += 2;
            }
        }
        if is_pipe_separator(s) {
            md += 3;
        }
        if s.starts_with("```") || s.starts_with("~~~") {
            md += 2;
        }
        if s.contains("](") && s.contains('[') {
            md += 1;
        }
        prev = line;
    }
    if doxygen {
        return Format::Text;
    }
    if rst == 0 && md == 0 {
        Format::Text
    } else if rst >= md {
        Format::Rst
    } else {
        Format::Markdown
    }
}

/// `+----+-----+` or `+====+=====+`.
pub(crate) fn is_grid_border(s: &str) -> bool {
    s.len() >= 3
        && s.starts_with('+')
        && s.ends_with('+')
        && s.bytes().all(|b| matches!(b, b'+' | b'-' | b'='))
        && s.bytes().any(|b| b == b'-' || b == b'=')
}

/// `=====  ======  ===` (at least two columns).
pub(crate) fn is_simple_table_border(s: &str) -> bool {
    s.starts_with('=')
        && s.bytes().all(|b| b == b'=' || b == b' ')
        && s.split_whitespace().count() >= 2
}

/// A line of one punctuation character repeated (at least three): a heading adornment.
pub(crate) fn is_adornment(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b"=-~^.*+#\"'`:_".contains(&b[0]) && b.iter().all(|&c| c == b[0])
}

/// A Markdown pipe table's separator row: `|---|:---:|`, `--- | ---`.
pub(crate) fn is_pipe_separator(s: &str) -> bool {
    if !s.contains('|') || !s.contains("---") {
        return false;
    }
    let inner = s.trim_matches('|');
    let mut cells = 0;
    for cell in inner.split('|') {
        let c = cell.trim();
        let c = c.strip_prefix(':').unwrap_or(c);
        let c = c.strip_suffix(':').unwrap_or(c);
        if c.is_empty() || !c.bytes().all(|b| b == b'-') {
            return false;
        }
        cells += 1;
    }
    cells >= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn pdf_magic_also_after_junk() {
        assert_eq!(detect(b"%PDF-1.7\n...").ok(), Some(Format::Pdf));
        let mut junk = vec![0xEFu8, 0xBB, 0xBF];
        junk.extend_from_slice(b"garbage\r\n%PDF-1.4\n");
        assert_eq!(detect(&junk).ok(), Some(Format::Pdf));
    }

    #[test]
    fn html_after_bom_prolog_and_comment() {
        for doc in [
            "<!DOCTYPE html><html><body><p>x</p></body></html>",
            "\u{feff}  <html lang=en>",
            "<?xml version=\"1.0\"?>\n<!-- generated -->\n<HTML>\n",
            "\n<TABLE border=1><tr><td>a</td></tr></TABLE>",
            "<body>",
        ] {
            assert_eq!(detect(doc.as_bytes()).ok(), Some(Format::Html), "{doc}");
        }
        assert_eq!(detect(b"<not html> at all").ok(), Some(Format::Text));
    }

    #[test]
    fn real_documents_are_told_apart() {
        for f in [
            "orthanc/DicomConformanceStatement-2021.txt",
            "orthanc/DicomConformanceStatement-2016.txt",
        ] {
            assert_eq!(detect(&fixture(f)).ok(), Some(Format::Text), "{f}");
        }
        for f in ["storescp", "storescu", "qrscp", "echoscp", "findscu"] {
            let p = format!("pynetdicom/{f}.rst");
            assert_eq!(detect(&fixture(&p)).ok(), Some(Format::Rst), "{p}");
        }
        for f in ["dcmqrscp", "storescp", "echoscu"] {
            let p = format!("dcmtk/{f}.man");
            assert_eq!(detect(&fixture(&p)).ok(), Some(Format::Text), "{p}");
        }
        let md = "# Conformance\n\n| SOP Class | UID |\n|---|---|\n| CT | 1.2 |\n";
        assert_eq!(detect(md.as_bytes()).ok(), Some(Format::Markdown));
    }

    #[test]
    fn encodings() {
        // UTF-16 LE and BE with BOM are text.
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for u in "CTImageStorage | 1.2.840.10008.5.1.4.1.1.2\n".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(detect(&le).ok(), Some(Format::Text));
        assert_eq!(detect(&be).ok(), Some(Format::Text));
        assert!(decode(&le).is_ok_and(|d| d.text.starts_with("CTImageStorage")));
        // Without BOM too.
        assert!(decode(&le[2..]).is_ok_and(|d| d.text.starts_with("CTImageStorage")));
        // Latin-1 that is not UTF-8.
        let latin = b"Gr\xfc\xdfe aus K\xf6ln\n";
        let d = decode(latin).ok();
        assert_eq!(
            d.as_ref().map(|d| d.text.as_ref()),
            Some("Grüße aus Köln\n")
        );
        assert_eq!(d.map(|d| d.encoding), Some("Windows-1252"));
        // A UTF-8 BOM followed by invalid UTF-8 is an encoding error at that byte.
        assert!(matches!(
            decode(b"\xEF\xBB\xBFabc\xff"),
            Err(ReadError::Encoding(6))
        ));
        // An unpaired surrogate in UTF-16.
        assert!(matches!(
            decode(&[0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0]),
            Err(ReadError::Encoding(4))
        ));
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        assert!(matches!(detect(b""), Err(ReadError::Empty)));
        assert!(matches!(detect(b" \n\t\r\n"), Err(ReadError::Empty)));
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        match detect(&garbage) {
            Err(ReadError::UnknownFormat(m)) => assert!(m.contains("binary data"), "{m}"),
            other => panic!("{other:?}"),
        }
        match detect(b"PK\x03\x04rest of a docx") {
            Err(ReadError::UnknownFormat(m)) => assert!(m.contains("ZIP"), "{m}"),
            other => panic!("{other:?}"),
        }
        match detect(b"{\"dicomDeviceName\": \"x\", \"dicomNetworkAE\": []}") {
            Err(ReadError::UnknownFormat(m)) => assert!(m.starts_with("JSON"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Braces that are not JSON are text.
        assert_eq!(detect(b"{ not json }\n").ok(), Some(Format::Text));
    }
}
