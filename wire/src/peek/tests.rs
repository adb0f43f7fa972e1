#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::deflated::inflate_prefix;
use super::vr::is_short_form;
use super::walk::UNDEFINED;
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
    ds.el(0x0008, 0x0005, "CS", b"\\ISO 2022 IR 87")
        .el(0x0010, 0x0010, "PN", b"\x1B$B;3ED\x1B(B");
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
