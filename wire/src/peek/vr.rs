//! The VRs the walk has to know: which take a 2- or 4-byte length in explicit VR, and
//! what a tag's VR is where the wire does not say.

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;

pub(super) type Vr = [u8; 2];

/// The VR of a tag in Implicit VR, where the wire does not say: private creators are LO,
/// group lengths UL, other standard tags from the dictionary, anything else UN.
pub(super) fn implicit_vr(group: u16, element: u16) -> Vr {
    if element == 0x0000 {
        return *b"UL";
    }
    if group % 2 == 1 {
        return if matches!(element, 0x0010..=0x00FF) {
            *b"LO"
        } else {
            *b"UN"
        };
    }
    StandardDataDictionary
        .by_tag(Tag(group, element))
        .and_then(|entry| entry.vr().exact())
        .and_then(|vr| vr.to_string().as_bytes().try_into().ok())
        .unwrap_or(*b"UN")
}

/// VRs with a 2-byte length in explicit VR encodings (PS3.5 Table 7.1-2).
pub(super) fn is_short_form(vr: &Vr) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// The standard VRs with a 4-byte length in explicit VR encodings.
pub(super) fn is_long_form(vr: &Vr) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}
