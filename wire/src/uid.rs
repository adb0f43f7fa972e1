//! UIDs as they appear on the wire (NUL-padded, sometimes space-padded) and their names in
//! the DICOM registry (PS3.6 Annex A, via `dicom-dictionary-std`).
//!
//! The SOP class registry of `dicom-dictionary-std` is public and indexed; its transfer
//! syntax, meta SOP class, well-known instance and application context tables are
//! crate-private, so they are copied below (`EXTRA`) and indexed here once, lazily.

use std::collections::HashMap;
use std::sync::OnceLock;

use UidType::{ApplicationContextName, MetaSopClass, TransferSyntax, WellKnownSopInstance};
use dicom_core::dictionary::{UidDictionary, UidDictionaryEntryRef, UidType};
use dicom_dictionary_std::sop_class;

/// A registry entry: UID, name, keyword (alias), type, retired flag.
pub type UidEntry = UidDictionaryEntryRef<'static>;

/// Outcome of cleaning a UID read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireUid {
    pub uid: String,
    /// Trailing NULs or spaces were trimmed.
    pub padded: bool,
    /// The padding included a space (PS3.5 pads UI with NUL only; some devices use spaces).
    pub space_padded: bool,
    /// Only digits and dots, no empty or leading-zero components, at most 64 characters.
    pub valid: bool,
}

/// Trims the padding from a UID value read off the wire and checks its syntax.
pub fn from_wire(raw: &[u8]) -> WireUid {
    let mut end = raw.len();
    let mut space_padded = false;
    while let Some(&b) = end.checked_sub(1).and_then(|i| raw.get(i)) {
        match b {
            0 => {}
            b' ' => space_padded = true,
            _ => break,
        }
        end -= 1;
    }
    let trimmed = raw.get(..end).unwrap_or_default();
    let uid = match std::str::from_utf8(trimmed) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(trimmed).into_owned(),
    };
    WireUid {
        valid: is_valid(&uid),
        padded: end != raw.len(),
        space_padded,
        uid,
    }
}

/// PS3.5 9.1: components of digits separated by dots, no leading zeros, at most 64 chars.
///
/// One pass over the bytes: every command set's UIDs are checked.
pub fn is_valid(uid: &str) -> bool {
    let b = uid.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return false;
    }
    // Start of the current component.
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'.' => {
                if i == start {
                    return false;
                }
                start = i + 1;
            }
            b'0' if i == start => {
                // A component may be "0" but not start with 0 otherwise.
                if b.get(i + 1).is_some_and(|&n| n != b'.') {
                    return false;
                }
            }
            b'0'..=b'9' => {}
            _ => return false,
        }
    }
    start < b.len()
}

/// Storage Commitment Push Model SOP Class (PS3.4 J.3): the SOP class of the N-ACTION that
/// requests a commitment and of the N-EVENT-REPORT that answers it.
pub const STORAGE_COMMITMENT_PUSH_MODEL: &str = "1.2.840.10008.1.20.1";

/// The registry entry of a standard UID (SOP class, meta SOP class, transfer syntax,
/// well-known SOP instance or application context name).
pub fn lookup(uid: &str) -> Option<&'static UidEntry> {
    sop_class::registry()
        .by_uid(uid)
        .or_else(|| extra_index().by_uid.get(uid).copied())
}

/// The registry name of a UID (e.g. "CT Image Storage"), if it is a standard one.
pub fn name(uid: &str) -> Option<&'static str> {
    lookup(uid).map(|e| e.name)
}

/// The registry keyword of a UID (e.g. "CTImageStorage"), if it is a standard one.
pub fn keyword(uid: &str) -> Option<&'static str> {
    lookup(uid).map(|e| e.alias)
}

/// The UID of a registry keyword such as "CTImageStorage" or "ImplicitVRLittleEndian"
/// (exact, case-sensitive as in PS3.6).
pub fn uid_for_keyword(keyword: &str) -> Option<&'static str> {
    sop_class::registry()
        .by_keyword(keyword)
        .or_else(|| extra_index().by_keyword.get(keyword).copied())
        .map(|e| e.uid)
}

/// Resolves what a person wrote in a device statement: a registry keyword
/// ("CTImageStorage") becomes its UID, a syntactically valid UID (standard or private) is
/// kept as is. Surrounding spaces and trailing NULs are ignored.
pub fn from_keyword_or_uid(s: &str) -> Option<String> {
    let s = s.trim_end_matches('\0').trim();
    if is_valid(s) {
        return Some(s.to_owned());
    }
    uid_for_keyword(s).map(str::to_owned)
}

/// A transfer syntax of the registry (retired ones included).
pub fn is_transfer_syntax(uid: &str) -> bool {
    lookup(uid).is_some_and(|e| e.r#type == UidType::TransferSyntax)
}

/// A SOP class or meta SOP class of the registry (retired ones included): what may be
/// proposed as an abstract syntax.
pub fn is_sop_class(uid: &str) -> bool {
    lookup(uid).is_some_and(|e| matches!(e.r#type, UidType::SopClass | UidType::MetaSopClass))
}

/// A retired UID of the registry (a conformance smell when still negotiated).
pub fn is_retired(uid: &str) -> bool {
    lookup(uid).is_some_and(|e| e.retired)
}

/// Every entry of the registry: SOP classes, meta SOP classes, transfer syntaxes,
/// well-known SOP instances and application context names. For lookups by name (a
/// conformance statement document names SOP classes in words), which the registry's own
/// index does not offer.
pub fn all() -> impl Iterator<Item = &'static UidEntry> {
    SOP_CLASS_UIDS
        .lines()
        .filter_map(|u| sop_class::registry().by_uid(u.trim()))
        .chain(EXTRA.iter())
}

/// The SOP class UIDs of `dicom-dictionary-std` 0.10.1 (`uids.rs` SOP_CLASSES, crate-private
/// there), one per line; names and flags come from the registry itself.
/// `sop_class_list_is_the_registry` guards it.
const SOP_CLASS_UIDS: &str = include_str!("sop_class_uids.txt");

struct ExtraIndex {
    by_uid: HashMap<&'static str, &'static UidEntry>,
    by_keyword: HashMap<&'static str, &'static UidEntry>,
}

fn extra_index() -> &'static ExtraIndex {
    static INDEX: OnceLock<ExtraIndex> = OnceLock::new();
    INDEX.get_or_init(|| ExtraIndex {
        by_uid: EXTRA.iter().map(|e| (e.uid, e)).collect(),
        by_keyword: EXTRA.iter().map(|e| (e.alias, e)).collect(),
    })
}

type E = UidEntry;

/// Copied from `dicom-dictionary-std` 0.10.1 `uids.rs` (TRANSFER_SYNTAXES,
/// META_SOP_CLASSES, WELL_KNOWN_SOP_INSTANCES, APPLICATION_CONTEXT_NAMES), which that crate
/// keeps private. Refresh when bumping it; `extra_table_matches_public_constants` guards a
/// sample.
#[rustfmt::skip]
const EXTRA: &[E] = &[
    E::new("1.2.840.10008.1.2", "Implicit VR Little Endian: Default Transfer Syntax for DICOM", "ImplicitVRLittleEndian", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.1", "Explicit VR Little Endian", "ExplicitVRLittleEndian", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", "EncapsulatedUncompressedExplicitVRLittleEndian", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", "DeflatedExplicitVRLittleEndian", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.2", "Explicit VR Big Endian (Retired)", "ExplicitVRBigEndian", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", "MPEG2MPML", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.100.1", "Fragmentable MPEG2 Main Profile / Main Level", "MPEG2MPMLF", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", "MPEG2MPHL", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.101.1", "Fragmentable MPEG2 Main Profile / High Level", "MPEG2MPHLF", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", "MPEG4HP41", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.102.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1", "MPEG4HP41F", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", "MPEG4HP41BD", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.103.1", "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", "MPEG4HP41BDF", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", "MPEG4HP422D", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.104.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", "MPEG4HP422DF", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", "MPEG4HP423D", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.105.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", "MPEG4HP423DF", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", "MPEG4HP42STEREO", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.106.1", "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", "MPEG4HP42STEREOF", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", "HEVCMP51", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", "HEVCM10P51", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", "JPEGXLLossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", "JPEGXLJPEGRecompression", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.112", "JPEG XL", "JPEGXL", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", "HTJ2KLossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", "HTJ2KLosslessRPCL", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", "HTJ2K", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.204", "JPIP HTJ2K Referenced", "JPIPHTJ2KReferenced", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.205", "JPIP HTJ2K Referenced Deflate", "JPIPHTJ2KReferencedDeflate", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1): Default Transfer Syntax for Lossy JPEG 8 Bit Image Compression", "JPEGBaseline8Bit", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2", "JPEGExtended12Bit", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3", "JPEGExtended35", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.53", "JPEG Spectral Selection, Non-Hierarchical (Process 6", "JPEGSpectralSelectionNonHierarchical68", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.54", "JPEG Spectral Selection, Non-Hierarchical (Process 7", "JPEGSpectralSelectionNonHierarchical79", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.55", "JPEG Full Progression, Non-Hierarchical (Process 10", "JPEGFullProgressionNonHierarchical1012", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.56", "JPEG Full Progression, Non-Hierarchical (Process 11", "JPEGFullProgressionNonHierarchical1113", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", "JPEGLossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.58", "JPEG Lossless, Non-Hierarchical (Process 15) (Retired)", "JPEGLosslessNonHierarchical15", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.59", "JPEG Extended, Hierarchical (Process 16", "JPEGExtendedHierarchical1618", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.60", "JPEG Extended, Hierarchical (Process 17", "JPEGExtendedHierarchical1719", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.61", "JPEG Spectral Selection, Hierarchical (Process 20", "JPEGSpectralSelectionHierarchical2022", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.62", "JPEG Spectral Selection, Hierarchical (Process 21", "JPEGSpectralSelectionHierarchical2123", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.63", "JPEG Full Progression, Hierarchical (Process 24", "JPEGFullProgressionHierarchical2426", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.64", "JPEG Full Progression, Hierarchical (Process 25", "JPEGFullProgressionHierarchical2527", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.65", "JPEG Lossless, Hierarchical (Process 28) (Retired)", "JPEGLosslessHierarchical28", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.66", "JPEG Lossless, Hierarchical (Process 29) (Retired)", "JPEGLosslessHierarchical29", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1]): Default Transfer Syntax for Lossless JPEG Image Compression", "JPEGLosslessSV1", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", "JPEGLSLossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", "JPEGLSNearLossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", "JPEG2000Lossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", "JPEG2000", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)", "JPEG2000MCLossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component Image Compression", "JPEG2000MC", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.94", "JPIP Referenced", "JPIPReferenced", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", "JPIPReferencedDeflate", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.5", "RLE Lossless", "RLELossless", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.6.1", "RFC 2557 MIME encapsulation (Retired)", "RFC2557MIMEEncapsulation", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.6.2", "XML Encoding (Retired)", "XMLEncoding", TransferSyntax, true),
    E::new("1.2.840.10008.1.2.7.1", "SMPTE ST 2110-20 Uncompressed Progressive Active Video", "SMPTEST211020UncompressedProgressiveActiveVideo", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.7.2", "SMPTE ST 2110-20 Uncompressed Interlaced Active Video", "SMPTEST211020UncompressedInterlacedActiveVideo", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.7.3", "SMPTE ST 2110-30 PCM Digital Audio", "SMPTEST211030PCMDigitalAudio", TransferSyntax, false),
    E::new("1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression", "DeflatedImageFrameCompression", TransferSyntax, false),
    E::new("1.2.840.10008.1.20", "Papyrus 3 Implicit VR Little Endian (Retired)", "Papyrus3ImplicitVRLittleEndian", TransferSyntax, true),
    E::new("1.2.840.10008.3.1.2.1.4", "Detached Patient Management Meta SOP Class (Retired)", "DetachedPatientManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.3.1.2.5.4", "Detached Results Management Meta SOP Class (Retired)", "DetachedResultsManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.3.1.2.5.5", "Detached Study Management Meta SOP Class (Retired)", "DetachedStudyManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.5.1.1.18", "Basic Color Print Management Meta SOP Class", "BasicColorPrintManagementMeta", MetaSopClass, false),
    E::new("1.2.840.10008.5.1.1.18.1", "Referenced Color Print Management Meta SOP Class (Retired)", "ReferencedColorPrintManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.5.1.1.32", "Pull Stored Print Management Meta SOP Class (Retired)", "PullStoredPrintManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.5.1.1.9", "Basic Grayscale Print Management Meta SOP Class", "BasicGrayscalePrintManagementMeta", MetaSopClass, false),
    E::new("1.2.840.10008.5.1.1.9.1", "Referenced Grayscale Print Management Meta SOP Class (Retired)", "ReferencedGrayscalePrintManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.5.1.4.32", "General Purpose Worklist Management Meta SOP Class (Retired)", "GeneralPurposeWorklistManagementMeta", MetaSopClass, true),
    E::new("1.2.840.10008.1.20.1.1", "Storage Commitment Push Model SOP Instance", "StorageCommitmentPushModelInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.20.2.1", "Storage Commitment Pull Model SOP Instance (Retired)", "StorageCommitmentPullModelInstance", WellKnownSopInstance, true),
    E::new("1.2.840.10008.1.40.1", "Procedural Event Logging SOP Instance", "ProceduralEventLoggingInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.42.1", "Substance Administration Logging SOP Instance", "SubstanceAdministrationLoggingInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.1", "Hot Iron Color Palette SOP Instance", "HotIronPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.2", "PET Color Palette SOP Instance", "PETPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.3", "Hot Metal Blue Color Palette SOP Instance", "HotMetalBluePalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.4", "PET 20 Step Color Palette SOP Instance", "PET20StepPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.5", "Spring Color Palette SOP Instance", "SpringPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.6", "Summer Color Palette SOP Instance", "SummerPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.7", "Fall Color Palette SOP Instance", "FallPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.1.5.8", "Winter Color Palette SOP Instance", "WinterPalette", WellKnownSopInstance, false),
    E::new("1.2.840.10008.5.1.1.17", "Printer SOP Instance", "PrinterInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.5.1.1.17.376", "Printer Configuration Retrieval SOP Instance", "PrinterConfigurationRetrievalInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.5.1.1.25", "Print Queue SOP Instance (Retired)", "PrintQueueInstance", WellKnownSopInstance, true),
    E::new("1.2.840.10008.5.1.1.40.1", "Display System SOP Instance", "DisplaySystemInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.5.1.4.1.1.201.1.1", "Storage Management SOP Instance", "StorageManagementInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.5.1.4.34.5", "UPS Global Subscription SOP Instance", "UPSGlobalSubscriptionInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.5.1.4.34.5.1", "UPS Filtered Global Subscription SOP Instance", "UPSFilteredGlobalSubscriptionInstance", WellKnownSopInstance, false),
    E::new("1.2.840.10008.3.1.1.1", "DICOM Application Context Name", "DICOMApplicationContext", ApplicationContextName, false),
];

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::uids;

    #[test]
    fn storage_commitment_push_model_is_the_registry_one() {
        assert_eq!(
            keyword(STORAGE_COMMITMENT_PUSH_MODEL),
            Some("StorageCommitmentPushModel")
        );
    }

    #[test]
    fn from_wire_trims_and_flags() {
        let u = from_wire(b"1.2.840.10008.1.2\0");
        assert_eq!(u.uid, "1.2.840.10008.1.2");
        assert!(u.padded && !u.space_padded && u.valid);

        let u = from_wire(b"1.2.3 ");
        assert_eq!(u.uid, "1.2.3");
        assert!(u.padded && u.space_padded && u.valid);

        let u = from_wire(b"1.2.3.4");
        assert!(!u.padded && u.valid);

        let u = from_wire(b"\0\0 ");
        assert_eq!(u.uid, "");
        assert!(u.padded && !u.valid);

        assert_eq!(from_wire(b"").uid, "");
        let u = from_wire(&[0xFF, b'1']);
        assert!(!u.valid);
    }

    #[test]
    fn validity() {
        assert!(is_valid("1.2.840.10008.1.1"));
        assert!(is_valid("1.2.0.3"));
        assert!(!is_valid("1.2.03"));
        assert!(!is_valid("1..2"));
        assert!(!is_valid("1.2."));
        assert!(!is_valid(".1.2"));
        assert!(!is_valid("1.2.a"));
        assert!(!is_valid(""));
        assert!(!is_valid(&format!("1.{}", "2".repeat(63))));
        assert!(is_valid(&format!("1.{}", "2".repeat(62))));
    }

    /// The one-pass check agrees with the rule read literally, on every string of up to
    /// four characters over the interesting alphabet.
    #[test]
    fn validity_matches_the_component_rule() {
        fn literal(uid: &str) -> bool {
            !uid.is_empty()
                && uid.len() <= 64
                && uid.split('.').all(|c| {
                    !c.is_empty()
                        && c.bytes().all(|b| b.is_ascii_digit())
                        && (c == "0" || !c.starts_with('0'))
                })
        }
        let alphabet = ['0', '1', '9', '.', 'a', ' ', 'é'];
        let mut cases = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = cases
                .iter()
                .flat_map(|c| alphabet.iter().map(move |a| format!("{c}{a}")))
                .collect();
            cases.extend(longer);
            cases.sort();
            cases.dedup();
        }
        for c in &cases {
            assert_eq!(is_valid(c), literal(c), "{c:?}");
        }
    }

    #[test]
    fn names_and_keywords() {
        assert_eq!(name("1.2.840.10008.5.1.4.1.1.2"), Some("CT Image Storage"));
        assert_eq!(keyword("1.2.840.10008.5.1.4.1.1.2"), Some("CTImageStorage"));
        assert_eq!(keyword("1.2.840.10008.1.1"), Some("Verification"));
        assert_eq!(keyword("1.2.840.10008.1.2"), Some("ImplicitVRLittleEndian"));
        assert_eq!(keyword("1.2.840.10008.1.2.4.50"), Some("JPEGBaseline8Bit"));
        assert_eq!(
            keyword("1.2.840.10008.3.1.1.1"),
            Some("DICOMApplicationContext")
        );
        assert_eq!(
            keyword("1.2.840.10008.1.20.1.1"),
            Some("StorageCommitmentPushModelInstance")
        );
        assert_eq!(name("1.2.3.4.5"), None);
        assert_eq!(keyword(""), None);
    }

    #[test]
    fn keyword_or_uid() {
        assert_eq!(
            from_keyword_or_uid("CTImageStorage").as_deref(),
            Some("1.2.840.10008.5.1.4.1.1.2")
        );
        assert_eq!(
            from_keyword_or_uid(" ImplicitVRLittleEndian ").as_deref(),
            Some("1.2.840.10008.1.2")
        );
        assert_eq!(
            from_keyword_or_uid("BasicGrayscalePrintManagementMeta").as_deref(),
            Some("1.2.840.10008.5.1.1.9")
        );
        // Private UIDs are accepted as written.
        assert_eq!(
            from_keyword_or_uid("1.3.6.1.4.1.9590.100.1.2\0").as_deref(),
            Some("1.3.6.1.4.1.9590.100.1.2")
        );
        assert_eq!(from_keyword_or_uid("NoSuchThing"), None);
        assert_eq!(from_keyword_or_uid("ctimagestorage"), None);
        assert_eq!(from_keyword_or_uid("1.02.3"), None);
        assert_eq!(uid_for_keyword("Verification"), Some("1.2.840.10008.1.1"));
    }

    #[test]
    fn kinds() {
        assert!(is_transfer_syntax("1.2.840.10008.1.2.1"));
        assert!(is_transfer_syntax("1.2.840.10008.1.2.4.201"));
        assert!(!is_transfer_syntax("1.2.840.10008.1.1"));
        assert!(is_sop_class("1.2.840.10008.1.1"));
        assert!(is_sop_class("1.2.840.10008.5.1.4.1.2.2.2"));
        assert!(is_sop_class("1.2.840.10008.5.1.1.9"));
        assert!(!is_sop_class("1.2.840.10008.1.2"));
        assert!(!is_sop_class("1.2.840.10008.1.20.1.1"));
        assert!(!is_sop_class("1.2.3"));
        assert!(is_retired("1.2.840.10008.1.2.2"));
        assert!(!is_retired("1.2.840.10008.1.2.1"));
    }

    #[test]
    fn sop_class_list_is_the_registry() {
        let n = SOP_CLASS_UIDS.lines().count();
        let found = all().filter(|e| e.r#type == UidType::SopClass).count();
        assert_eq!(found, n, "every listed UID is a SOP class of the registry");
        for uid in [
            uids::VERIFICATION,
            uids::CT_IMAGE_STORAGE,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
        ] {
            assert!(all().any(|e| e.uid == uid), "{uid}");
        }
    }

    #[test]
    #[allow(deprecated)]
    fn extra_table_matches_public_constants() {
        for (uid, kw) in [
            (uids::IMPLICIT_VR_LITTLE_ENDIAN, "ImplicitVRLittleEndian"),
            (uids::EXPLICIT_VR_LITTLE_ENDIAN, "ExplicitVRLittleEndian"),
            (uids::EXPLICIT_VR_BIG_ENDIAN, "ExplicitVRBigEndian"),
            (
                uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
                "DeflatedExplicitVRLittleEndian",
            ),
            (uids::JPEG_BASELINE8_BIT, "JPEGBaseline8Bit"),
            (uids::RLE_LOSSLESS, "RLELossless"),
            (uids::JPEG2000_LOSSLESS, "JPEG2000Lossless"),
            (uids::HTJ2K, "HTJ2K"),
            (uids::HOT_IRON_PALETTE, "HotIronPalette"),
        ] {
            assert_eq!(keyword(uid), Some(kw), "{uid}");
            assert_eq!(uid_for_keyword(kw), Some(uid), "{kw}");
        }
        for e in EXTRA {
            assert!(is_valid(e.uid), "{}", e.uid);
        }
    }
}
