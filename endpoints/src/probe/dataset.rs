//! Minimal data set coding for the probe: Implicit / Explicit VR Little Endian, elements
//! with raw value bytes (so text is sent and compared byte for byte, in whatever
//! character set), nested sequences. Enough for query identifiers, Storage Commitment
//! requests and reports, and small generated objects; never for pixel data decoding.

use crate::peers::EncodedObject;

pub use dicomtap_wire::syntax::{
    EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_LE, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_LE,
};

/// A value: raw bytes with a VR, or a sequence of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bytes([u8; 2], Vec<u8>),
    Seq(Vec<Dataset>),
}

/// Elements by tag (group << 16 | element), kept sorted when encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    pub elements: Vec<(u32, Value)>,
}

/// Tags used by the probe.
pub mod tag {
    pub const SPECIFIC_CHARACTER_SET: u32 = 0x0008_0005;
    pub const SOP_CLASS_UID: u32 = 0x0008_0016;
    pub const SOP_INSTANCE_UID: u32 = 0x0008_0018;
    pub const STUDY_DATE: u32 = 0x0008_0020;
    pub const STUDY_TIME: u32 = 0x0008_0030;
    pub const QUERY_RETRIEVE_LEVEL: u32 = 0x0008_0052;
    pub const MODALITY: u32 = 0x0008_0060;
    pub const FAILURE_REASON: u32 = 0x0008_1197;
    pub const FAILED_SOP_SEQUENCE: u32 = 0x0008_1198;
    pub const REFERENCED_SOP_SEQUENCE: u32 = 0x0008_1199;
    pub const REFERENCED_SOP_CLASS_UID: u32 = 0x0008_1150;
    pub const REFERENCED_SOP_INSTANCE_UID: u32 = 0x0008_1155;
    pub const TRANSACTION_UID: u32 = 0x0008_1195;
    pub const PATIENT_NAME: u32 = 0x0010_0010;
    pub const PATIENT_ID: u32 = 0x0010_0020;
    pub const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
    pub const SERIES_INSTANCE_UID: u32 = 0x0020_000E;
    pub const STUDY_ID: u32 = 0x0020_0010;
    pub const SERIES_NUMBER: u32 = 0x0020_0011;
    pub const INSTANCE_NUMBER: u32 = 0x0020_0013;
    pub const SAMPLES_PER_PIXEL: u32 = 0x0028_0002;
    pub const PHOTOMETRIC: u32 = 0x0028_0004;
    pub const ROWS: u32 = 0x0028_0010;
    pub const COLUMNS: u32 = 0x0028_0011;
    pub const BITS_ALLOCATED: u32 = 0x0028_0100;
    pub const BITS_STORED: u32 = 0x0028_0101;
    pub const HIGH_BIT: u32 = 0x0028_0102;
    pub const PIXEL_REPRESENTATION: u32 = 0x0028_0103;
    pub const NUMBER_OF_STUDY_RELATED_INSTANCES: u32 = 0x0020_1208;
    pub const PIXEL_DATA: u32 = 0x7FE0_0010;
}

/// Tags of sequences the probe reads in Implicit VR (where the VR is not on the wire).
fn implicit_is_sequence(t: u32) -> bool {
    matches!(
        t,
        tag::FAILED_SOP_SEQUENCE
            | tag::REFERENCED_SOP_SEQUENCE
            | 0x0008_1110
            | 0x0008_1115
            | 0x0008_1140
            | 0x0008_1032
            | 0x0040_0275
            | 0x0040_0100
            | 0x0008_0082
    )
}

fn implicit_vr(t: u32) -> [u8; 2] {
    match t {
        tag::PATIENT_NAME => *b"PN",
        tag::STUDY_DATE => *b"DA",
        tag::SPECIFIC_CHARACTER_SET | tag::MODALITY | tag::QUERY_RETRIEVE_LEVEL => *b"CS",
        t if implicit_is_sequence(t) => *b"SQ",
        _ => *b"UN",
    }
}

impl Dataset {
    pub fn new() -> Self {
        Dataset::default()
    }

    /// Sets a text or UID value (padded to even length: NUL for UI, space otherwise).
    pub fn put_str(&mut self, t: u32, vr: &str, value: &[u8]) -> &mut Self {
        let mut v = value.to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == "UI" { 0 } else { b' ' });
        }
        self.put(t, vr, v)
    }

    pub fn put_us(&mut self, t: u32, value: u16) -> &mut Self {
        self.put(t, "US", value.to_le_bytes().to_vec())
    }

    pub fn put(&mut self, t: u32, vr: &str, value: Vec<u8>) -> &mut Self {
        let vr = vr.as_bytes();
        let vr = [
            vr.first().copied().unwrap_or(b'U'),
            vr.get(1).copied().unwrap_or(b'N'),
        ];
        self.set(t, Value::Bytes(vr, value));
        self
    }

    pub fn put_seq(&mut self, t: u32, items: Vec<Dataset>) -> &mut Self {
        self.set(t, Value::Seq(items));
        self
    }

    fn set(&mut self, t: u32, v: Value) {
        match self.elements.iter_mut().find(|(x, _)| *x == t) {
            Some(e) => e.1 = v,
            None => self.elements.push((t, v)),
        }
    }

    pub fn get(&self, t: u32) -> Option<&Value> {
        self.elements.iter().find(|(x, _)| *x == t).map(|(_, v)| v)
    }

    /// Raw bytes of a value (padding kept).
    pub fn raw(&self, t: u32) -> Option<&[u8]> {
        match self.get(t)? {
            Value::Bytes(_, b) => Some(b),
            Value::Seq(_) => None,
        }
    }

    /// A text value without trailing padding (spaces, NULs).
    pub fn text(&self, t: u32) -> Option<String> {
        self.raw(t).map(|b| {
            String::from_utf8_lossy(b)
                .trim_end_matches([' ', '\0'])
                .trim_start()
                .to_string()
        })
    }

    /// Raw bytes without trailing padding.
    pub fn raw_trimmed(&self, t: u32) -> Option<&[u8]> {
        self.raw(t).map(|b| {
            let mut end = b.len();
            while end > 0 && matches!(b.get(end - 1), Some(b' ') | Some(0)) {
                end -= 1;
            }
            b.get(..end).unwrap_or_default()
        })
    }

    pub fn items(&self, t: u32) -> &[Dataset] {
        match self.get(t) {
            Some(Value::Seq(items)) => items,
            _ => &[],
        }
    }

    /// Encodes in Implicit (`explicit == false`) or Explicit VR Little Endian.
    pub fn encode(&self, explicit: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut els: Vec<&(u32, Value)> = self.elements.iter().collect();
        els.sort_by_key(|(t, _)| *t);
        for (t, v) in els {
            out.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
            out.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
            let (vr, value) = match v {
                Value::Bytes(vr, b) => (*vr, b.clone()),
                Value::Seq(items) => {
                    let mut body = Vec::new();
                    for it in items {
                        let enc = it.encode(explicit);
                        body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
                        body.extend_from_slice(&(enc.len() as u32).to_le_bytes());
                        body.extend_from_slice(&enc);
                    }
                    (*b"SQ", body)
                }
            };
            if explicit {
                out.extend_from_slice(&vr);
                if long_vr(vr) {
                    out.extend_from_slice(&[0, 0]);
                    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                } else {
                    out.extend_from_slice(&(value.len().min(0xFFFF) as u16).to_le_bytes());
                }
            } else {
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(&value);
        }
        out
    }

    /// Decodes a data set; `explicit` as negotiated. Lenient: stops at the first element
    /// that does not fit and returns what was read.
    pub fn decode(bytes: &[u8], explicit: bool) -> Dataset {
        let mut pos = 0;
        decode_items(bytes, &mut pos, explicit, 0)
    }
}

fn long_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OW"
            | b"OF"
            | b"OD"
            | b"OL"
            | b"OV"
            | b"SQ"
            | b"UT"
            | b"UN"
            | b"UC"
            | b"UR"
            | b"SV"
            | b"UV"
    )
}

fn u16_at(b: &[u8], p: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(p)?, *b.get(p + 1)?]))
}
fn u32_at(b: &[u8], p: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(p)?,
        *b.get(p + 1)?,
        *b.get(p + 2)?,
        *b.get(p + 3)?,
    ]))
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_END: u32 = 0xFFFE_E00D;
const SEQ_END: u32 = 0xFFFE_E0DD;

/// Reads elements until the end of `b`, or an item delimiter (consumed).
fn decode_items(b: &[u8], pos: &mut usize, explicit: bool, depth: u32) -> Dataset {
    let mut ds = Dataset::new();
    while *pos + 8 <= b.len() {
        let (Some(g), Some(e)) = (u16_at(b, *pos), u16_at(b, *pos + 2)) else {
            break;
        };
        let t = (u32::from(g) << 16) | u32::from(e);
        if t == ITEM_END || t == SEQ_END {
            *pos += 8;
            break;
        }
        let (vr, len, hdr) = if explicit && g != 0xFFFE {
            let vr = [b[*pos + 4], b[*pos + 5]];
            if long_vr(vr) {
                let Some(l) = u32_at(b, *pos + 8) else { break };
                (vr, l, 12)
            } else {
                let Some(l) = u16_at(b, *pos + 6) else { break };
                (vr, u32::from(l), 8)
            }
        } else {
            let Some(l) = u32_at(b, *pos + 4) else { break };
            (implicit_vr(t), l, 8)
        };
        *pos += hdr;
        let is_seq =
            &vr == b"SQ" || (!explicit && len == UNDEFINED) || (&vr == b"UN" && len == UNDEFINED);
        if is_seq && depth < 16 {
            let mut items = Vec::new();
            let end = if len == UNDEFINED {
                None
            } else {
                Some((*pos).saturating_add(len as usize).min(b.len()))
            };
            loop {
                if end.is_some_and(|e| *pos >= e) || *pos + 8 > b.len() {
                    break;
                }
                let (Some(ig), Some(ie), Some(il)) =
                    (u16_at(b, *pos), u16_at(b, *pos + 2), u32_at(b, *pos + 4))
                else {
                    break;
                };
                let it = (u32::from(ig) << 16) | u32::from(ie);
                *pos += 8;
                if it == SEQ_END {
                    break;
                }
                if it != ITEM {
                    *pos = end.unwrap_or(b.len());
                    break;
                }
                if il == UNDEFINED {
                    items.push(decode_items(b, pos, explicit, depth + 1));
                } else {
                    let iend = (*pos).saturating_add(il as usize).min(b.len());
                    let sub = b.get(*pos..iend).unwrap_or_default();
                    let mut p2 = 0;
                    items.push(decode_items(sub, &mut p2, explicit, depth + 1));
                    *pos = iend;
                }
            }
            if let Some(e) = end {
                *pos = e;
            }
            ds.elements.push((t, Value::Seq(items)));
            continue;
        }
        if len == UNDEFINED {
            // Encapsulated pixel data or similar: not needed, stop here.
            break;
        }
        let end = (*pos).saturating_add(len as usize);
        let Some(v) = b.get(*pos..end) else { break };
        ds.elements.push((t, Value::Bytes(vr, v.to_vec())));
        *pos = end;
    }
    ds
}

/// A Part-10 file split into its meta information and data set.
#[derive(Debug, Clone)]
pub struct Part10 {
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub dataset: Vec<u8>,
}

/// Reads a Part-10 file's bytes (preamble, DICM, group 0002 explicit LE).
pub fn read_part10(bytes: &[u8]) -> Option<Part10> {
    if bytes.get(128..132)? != b"DICM" {
        return None;
    }
    let mut pos = 132;
    let mut meta = Dataset::new();
    while u16_at(bytes, pos)? == 0x0002 {
        let e = u16_at(bytes, pos + 2)?;
        let vr = [*bytes.get(pos + 4)?, *bytes.get(pos + 5)?];
        let (len, hdr) = if long_vr(vr) {
            (u32_at(bytes, pos + 8)? as usize, 12)
        } else {
            (usize::from(u16_at(bytes, pos + 6)?), 8)
        };
        let v = bytes.get(pos + hdr..pos + hdr + len)?;
        meta.put(0x0002_0000 | u32::from(e), "UN", v.to_vec());
        pos += hdr + len;
    }
    let ts = meta.text(0x0002_0010)?;
    Some(Part10 {
        transfer_syntax: ts,
        sop_class_uid: meta.text(0x0002_0002)?,
        sop_instance_uid: meta.text(0x0002_0003)?,
        dataset: bytes.get(pos..)?.to_vec(),
    })
}

/// What a generated object should carry.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    pub patient_name: String,
    pub patient_id: String,
    pub study_uid: String,
    pub study_date: String,
    pub transfer_syntax: String,
}

/// Secondary Capture Image Storage.
pub const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

/// A small Secondary Capture object (8x8, 8-bit monochrome) in Implicit or Explicit VR
/// Little Endian, with ISO_IR 192 as its character set.
pub fn generate(spec: &ObjectSpec) -> EncodedObject {
    generate_with(spec, |_| {})
}

/// [`generate`], with `adjust` applied to the data set before it is encoded (another
/// Study Time, say).
pub fn generate_with(spec: &ObjectSpec, adjust: impl FnOnce(&mut Dataset)) -> EncodedObject {
    let sop_instance = crate::peers::study::new_uid();
    let series = crate::peers::study::new_uid();
    let mut ds = Dataset::new();
    ds.put_str(tag::SPECIFIC_CHARACTER_SET, "CS", b"ISO_IR 192")
        .put_str(tag::SOP_CLASS_UID, "UI", SECONDARY_CAPTURE.as_bytes())
        .put_str(tag::SOP_INSTANCE_UID, "UI", sop_instance.as_bytes())
        .put_str(tag::STUDY_DATE, "DA", spec.study_date.as_bytes())
        .put_str(tag::STUDY_TIME, "TM", b"120000")
        .put_str(0x0008_0050, "SH", b"")
        .put_str(tag::MODALITY, "CS", b"OT")
        .put_str(0x0008_0064, "CS", b"WSD")
        .put_str(0x0008_0090, "PN", b"")
        .put_str(
            0x0008_1030,
            "LO",
            crate::probe::checks::TEST_STUDY_DESCRIPTION.as_bytes(),
        )
        .put_str(
            0x0009_0010,
            "LO",
            crate::peers::iods::PRIVATE_CREATOR.as_bytes(),
        )
        .put_str(0x0009_1000, "LO", b"test data, safe to delete")
        .put_str(
            0x0010_4000,
            "LT",
            crate::probe::checks::TEST_PATIENT_COMMENTS.as_bytes(),
        )
        .put_str(tag::PATIENT_NAME, "PN", spec.patient_name.as_bytes())
        .put_str(tag::PATIENT_ID, "LO", spec.patient_id.as_bytes())
        .put_str(0x0010_0030, "DA", b"")
        .put_str(0x0010_0040, "CS", b"O")
        .put_str(tag::STUDY_INSTANCE_UID, "UI", spec.study_uid.as_bytes())
        .put_str(tag::SERIES_INSTANCE_UID, "UI", series.as_bytes())
        .put_str(tag::STUDY_ID, "SH", b"PROBE")
        .put_str(tag::SERIES_NUMBER, "IS", b"1")
        .put_str(tag::INSTANCE_NUMBER, "IS", b"1")
        .put_us(tag::SAMPLES_PER_PIXEL, 1)
        .put_str(tag::PHOTOMETRIC, "CS", b"MONOCHROME2")
        .put_us(tag::ROWS, 8)
        .put_us(tag::COLUMNS, 8)
        .put_us(tag::BITS_ALLOCATED, 8)
        .put_us(tag::BITS_STORED, 8)
        .put_us(tag::HIGH_BIT, 7)
        .put_us(tag::PIXEL_REPRESENTATION, 0)
        .put(tag::PIXEL_DATA, "OB", (0u8..64).map(|i| i * 4).collect());
    adjust(&mut ds);
    let explicit = spec.transfer_syntax == EXPLICIT_LE;
    EncodedObject {
        sop_class_uid: SECONDARY_CAPTURE.to_string(),
        sop_instance_uid: sop_instance,
        transfer_syntax: if explicit { EXPLICIT_LE } else { IMPLICIT_LE }.to_string(),
        dataset: ds.encode(explicit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_sequences() {
        for explicit in [false, true] {
            let mut item = Dataset::new();
            item.put_str(tag::REFERENCED_SOP_CLASS_UID, "UI", b"1.2.3")
                .put_str(tag::REFERENCED_SOP_INSTANCE_UID, "UI", b"1.2.3.4");
            let mut ds = Dataset::new();
            ds.put_str(tag::TRANSACTION_UID, "UI", b"2.25.1")
                .put_seq(tag::REFERENCED_SOP_SEQUENCE, vec![item.clone(), item])
                .put_str(tag::PATIENT_NAME, "PN", "Müller^Jürgen".as_bytes());
            let enc = ds.encode(explicit);
            let back = Dataset::decode(&enc, explicit);
            assert_eq!(back.text(tag::TRANSACTION_UID).as_deref(), Some("2.25.1"));
            assert_eq!(back.items(tag::REFERENCED_SOP_SEQUENCE).len(), 2);
            assert_eq!(
                back.items(tag::REFERENCED_SOP_SEQUENCE)[1]
                    .text(tag::REFERENCED_SOP_INSTANCE_UID)
                    .as_deref(),
                Some("1.2.3.4")
            );
            assert_eq!(
                back.raw_trimmed(tag::PATIENT_NAME),
                Some("Müller^Jürgen".as_bytes())
            );
        }
    }

    #[test]
    fn undefined_length_sequences_decode() {
        // (0008,1199) SQ undefined length, one item of undefined length, implicit VR.
        let mut b = vec![0x08, 0x00, 0x99, 0x11, 0xFF, 0xFF, 0xFF, 0xFF];
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(&[0x08, 0x00, 0x55, 0x11, 4, 0, 0, 0, b'1', b'.', b'2', 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 2, 0, 0, 0, b'A', b' ']);
        let ds = Dataset::decode(&b, false);
        assert_eq!(ds.items(tag::REFERENCED_SOP_SEQUENCE).len(), 1);
        assert_eq!(ds.text(tag::PATIENT_NAME).as_deref(), Some("A"));
    }
}
