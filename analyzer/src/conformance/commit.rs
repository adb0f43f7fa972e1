//! Storage Commitment Push Model data sets (PS3.4 J.3): the N-ACTION-RQ request (Transaction
//! UID, Referenced SOP Sequence) and the N-EVENT-REPORT-RQ result (Referenced SOP Sequence
//! of committed instances, Failed SOP Sequence with Failure Reasons). They are small; the
//! caller collects at most [`MAX_COMMIT_DATASET`] bytes and parses them here with
//! dicom-object in the context's transfer syntax.

use dicom_core::Tag;
use dicom_encoding::{Codec, Endianness, TransferSyntax};
use dicom_object::InMemDicomObject;
use dicomtap_wire::syntax::{self, EXPLICIT_VR_LITTLE_ENDIAN, Encoding};

/// Largest Storage Commitment data set collected and parsed.
pub const MAX_COMMIT_DATASET: usize = 1 << 20;

pub use dicomtap_wire::uid::STORAGE_COMMITMENT_PUSH_MODEL;
/// Storage Commitment Push Model SOP Instance (well known).
pub const STORAGE_COMMITMENT_INSTANCE: &str = "1.2.840.10008.1.20.1.1";

const TRANSACTION_UID: Tag = Tag(0x0008, 0x1195);
const REFERENCED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1199);
const FAILED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1198);
const REFERENCED_SOP_CLASS_UID: Tag = Tag(0x0008, 0x1150);
const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
const FAILURE_REASON: Tag = Tag(0x0008, 0x1197);

/// One instance referenced in a commitment data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    pub sop_class: Option<String>,
    pub sop_instance: String,
    /// Failure Reason (0008,1197), for the Failed SOP Sequence.
    pub failure_reason: Option<u16>,
}

/// What a commitment data set says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitDataset {
    pub transaction_uid: Option<String>,
    /// Referenced SOP Sequence: requested (N-ACTION) or committed (N-EVENT-REPORT).
    pub referenced: Vec<Referenced>,
    /// Failed SOP Sequence (N-EVENT-REPORT event type 2).
    pub failed: Vec<Referenced>,
}

/// Why a commitment data set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("data set larger than {MAX_COMMIT_DATASET} bytes; not parsed")]
    TooLarge,
    #[error("transfer syntax {0} is not an uncompressed native encoding; not parsed")]
    UnsupportedTransferSyntax(String),
    #[error("cannot parse the data set: {0}")]
    Parse(String),
}

/// The descriptor a commitment data set is decoded with: the uncompressed syntax of the
/// wire's registry with the encoding `uid` implies. Data sets without pixel data under an
/// encapsulated syntax are Explicit VR Little Endian; other encodings are not read.
fn transfer_syntax(uid: &str) -> Option<TransferSyntax> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    let encoding = syntax::encoding_of(uid);
    let (native, order, explicit) = match encoding {
        Encoding::ImplicitVrLittleEndian => (uid, Endianness::Little, false),
        Encoding::ExplicitVrLittleEndian => (uid, Endianness::Little, true),
        Encoding::Encapsulated => (EXPLICIT_VR_LITTLE_ENDIAN, Endianness::Little, true),
        Encoding::ExplicitVrBigEndian => (uid, Endianness::Big, true),
        Encoding::DeflatedExplicitVrLittleEndian | Encoding::Unknown => return None,
    };
    let native = syntax::lookup(native)?;
    Some(TransferSyntax::new(
        native.uid,
        native.name,
        order,
        explicit,
        Codec::None,
    ))
}

/// Parses a commitment data set encoded in transfer syntax `ts_uid`.
pub fn parse(bytes: &[u8], ts_uid: &str) -> Result<CommitDataset, CommitError> {
    if bytes.len() > MAX_COMMIT_DATASET {
        return Err(CommitError::TooLarge);
    }
    let ts = transfer_syntax(ts_uid)
        .ok_or_else(|| CommitError::UnsupportedTransferSyntax(ts_uid.to_string()))?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts)
        .map_err(|e| CommitError::Parse(e.to_string()))?;
    let text = |o: &InMemDicomObject, tag: Tag| -> Option<String> {
        o.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    let list = |tag: Tag| -> Vec<Referenced> {
        let Some(items) = obj.get(tag).and_then(|e| e.items()) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| {
                Some(Referenced {
                    sop_class: text(item, REFERENCED_SOP_CLASS_UID),
                    sop_instance: text(item, REFERENCED_SOP_INSTANCE_UID)?,
                    failure_reason: item
                        .get(FAILURE_REASON)
                        .and_then(|e| e.to_int::<u16>().ok()),
                })
            })
            .collect()
    };
    Ok(CommitDataset {
        transaction_uid: text(&obj, TRANSACTION_UID),
        referenced: list(REFERENCED_SOP_SEQUENCE),
        failed: list(FAILED_SOP_SEQUENCE),
    })
}

/// Words for a Failure Reason (PS3.4 J.3.2.1.1.1 / C.4.x).
pub fn failure_reason_name(code: u16) -> &'static str {
    match code {
        0x0110 => "processing failure",
        0x0112 => "no such object instance",
        0x0119 => "class-instance conflict",
        0x0122 => "referenced SOP class not supported",
        0x0131 => "duplicate transaction UID",
        0x0213 => "resource limitation",
        0xA770 => "SOP instance cannot be committed at this time",
        _ => "unknown failure reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(out: &mut Vec<u8>, group: u16, elem: u16, vr: Option<&[u8; 2]>, value: &[u8]) {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        match vr {
            None => out.extend_from_slice(&(value.len() as u32).to_le_bytes()),
            Some(vr) => {
                out.extend_from_slice(vr);
                if vr == b"SQ" {
                    out.extend_from_slice(&[0, 0]);
                    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                } else {
                    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
                }
            }
        }
        out.extend_from_slice(value);
    }

    fn uid(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn item(content: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFE, 0xFF, 0x00, 0xE0];
        out.extend_from_slice(&(content.len() as u32).to_le_bytes());
        out.extend_from_slice(content);
        out
    }

    /// A report with one committed and one failed instance, Implicit or Explicit VR LE.
    pub(crate) fn report(explicit: bool) -> Vec<u8> {
        let vr = |v: &'static [u8; 2]| explicit.then_some(v);
        let mut ok = Vec::new();
        element(
            &mut ok,
            0x0008,
            0x1150,
            vr(b"UI"),
            &uid("1.2.840.10008.5.1.4.1.1.2"),
        );
        element(&mut ok, 0x0008, 0x1155, vr(b"UI"), &uid("1.2.3.4.1"));
        let mut bad = Vec::new();
        element(
            &mut bad,
            0x0008,
            0x1150,
            vr(b"UI"),
            &uid("1.2.840.10008.5.1.4.1.1.2"),
        );
        element(&mut bad, 0x0008, 0x1155, vr(b"UI"), &uid("1.2.3.4.2"));
        element(
            &mut bad,
            0x0008,
            0x1197,
            vr(b"US"),
            &0x0110u16.to_le_bytes(),
        );
        let mut ds = Vec::new();
        element(&mut ds, 0x0008, 0x1195, vr(b"UI"), &uid("1.2.3.99"));
        element(&mut ds, 0x0008, 0x1198, vr(b"SQ"), &item(&bad));
        element(&mut ds, 0x0008, 0x1199, vr(b"SQ"), &item(&ok));
        ds
    }

    #[test]
    fn parses_a_report_in_both_encodings() {
        for (explicit, ts) in [(false, "1.2.840.10008.1.2"), (true, "1.2.840.10008.1.2.1")] {
            let got = parse(&report(explicit), ts).unwrap_or_default();
            assert_eq!(got.transaction_uid.as_deref(), Some("1.2.3.99"), "{ts}");
            assert_eq!(got.referenced.len(), 1);
            assert_eq!(got.referenced[0].sop_instance, "1.2.3.4.1");
            assert_eq!(got.failed.len(), 1);
            assert_eq!(got.failed[0].sop_instance, "1.2.3.4.2");
            assert_eq!(got.failed[0].failure_reason, Some(0x0110));
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(
            parse(&[1, 2, 3], "1.2.3.private"),
            Err(CommitError::UnsupportedTransferSyntax(_))
        ));
        assert!(
            parse(
                &[0x08, 0x00, 0x95, 0x11, 0xFF, 0xFF, 0x00, 0x10],
                "1.2.840.10008.1.2"
            )
            .is_err()
        );
        assert!(matches!(
            parse(&vec![0u8; MAX_COMMIT_DATASET + 1], "1.2.840.10008.1.2"),
            Err(CommitError::TooLarge)
        ));
    }

    #[test]
    fn decodes_with_the_uncompressed_syntax_of_the_encoding() {
        let d = |uid: &str| transfer_syntax(uid).map(|t| (t.uid(), t.name(), t.endianness()));
        assert_eq!(
            d("1.2.840.10008.1.2\0"),
            Some((
                "1.2.840.10008.1.2",
                "Implicit VR Little Endian",
                Endianness::Little
            ))
        );
        assert_eq!(
            d("1.2.840.10008.1.2.2"),
            Some((
                "1.2.840.10008.1.2.2",
                "Explicit VR Big Endian",
                Endianness::Big
            ))
        );
        // JPEG Baseline: no pixel data in a commitment data set, Explicit VR LE.
        assert_eq!(
            d("1.2.840.10008.1.2.4.50"),
            Some((
                "1.2.840.10008.1.2.1",
                "Explicit VR Little Endian",
                Endianness::Little
            ))
        );
        assert_eq!(d("1.2.840.10008.1.2.1.99"), None, "deflated");
        // The report of the test above under JPEG Baseline reads as Explicit VR LE.
        let got = parse(&report(true), "1.2.840.10008.1.2.4.50").unwrap_or_default();
        assert_eq!(got.transaction_uid.as_deref(), Some("1.2.3.99"));
    }
}
