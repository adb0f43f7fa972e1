//! SOP classes and transfer syntaxes named in words, matched against the DICOM registry
//! (PS3.6, via `dicom-dictionary-std`).
//!
//! Conformance statements rarely write keywords: they write "CT Image Storage", "Storage
//! Commitment Push Model SOP Class", "12-lead ECG Waveform Storage", "Digital X-Ray Image
//! Storage - For Processing", "Ultrasound Multi-frame Image Storage (Retired)", "JPEG
//! Lossless SV1", "JPEG 2000 (lossless only)", and toolkit names such as DCMTK's
//! "LittleEndianExplicitTransferSyntax" or Orthanc's "RETIRED_VLImageStorage". Matching is
//! done on a normalised form (letters and digits only, lower case, filler words such as
//! "SOP Class" dropped, "(Retired)" kept apart as a flag), then on a table of the
//! spellings vendors use for transfer syntaxes, then by a bounded edit distance for long
//! names where exactly one entry is that close.

use std::collections::HashMap;
use std::sync::OnceLock;

use dicom_core::dictionary::UidType;
use dicomtap_wire::uid::{self, UidEntry};

/// What kind of UID a name is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SopClass,
    TransferSyntax,
}

/// How a name was matched: exact matches need no review, close ones do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// The registry name or keyword, up to case, punctuation and filler words.
    Exact,
    /// A spelling vendors commonly use (alias table) or a toolkit name.
    Alias,
    /// Within a small edit distance of exactly one registry name.
    Close,
}

/// A name resolved to a registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    pub entry: &'static UidEntry,
    pub quality: Quality,
}

/// Lower-case letters and digits of `s`, with filler words removed and common spelling
/// variants folded ("x-ray" and "xray", "multi-frame" and "multiframe" become the same).
/// Returns the key and whether the text said "retired".
pub fn normalise(s: &str) -> (String, bool) {
    let lower = s.to_lowercase();
    let mut retired = false;
    let mut key = String::with_capacity(lower.len());
    for word in lower.split(|c: char| !c.is_ascii_alphanumeric()) {
        match word {
            "" | "sop" | "class" | "the" | "iod" | "and" => {}
            "retired" => retired = true,
            // Orthanc and DCMTK prefix retired and draft keywords.
            w if w.starts_with("retired") && w.len() > 7 => {
                retired = true;
                key.push_str(&w[7..]);
            }
            w => key.push_str(w),
        }
    }
    (key, retired)
}

struct Index {
    /// Normalised name or keyword -> entries with that key (retired and current may share one).
    by_key: HashMap<String, Vec<&'static UidEntry>>,
    /// All (key, entry) pairs of the kind, for the edit-distance fallback.
    keys: Vec<(String, &'static UidEntry)>,
}

fn kind_of(e: &UidEntry) -> Option<Kind> {
    match e.r#type {
        UidType::SopClass | UidType::MetaSopClass => Some(Kind::SopClass),
        UidType::TransferSyntax => Some(Kind::TransferSyntax),
        _ => None,
    }
}

fn index(kind: Kind) -> &'static Index {
    static SOP: OnceLock<Index> = OnceLock::new();
    static TS: OnceLock<Index> = OnceLock::new();
    let cell = match kind {
        Kind::SopClass => &SOP,
        Kind::TransferSyntax => &TS,
    };
    cell.get_or_init(|| {
        let mut by_key: HashMap<String, Vec<&'static UidEntry>> = HashMap::new();
        let mut keys = Vec::new();
        for e in uid::all().filter(|e| kind_of(e) == Some(kind)) {
            let mut names = vec![normalise(e.name).0, normalise(e.alias).0];
            // "Implicit VR Little Endian: Default Transfer Syntax for DICOM".
            if let Some((head, _)) = e.name.split_once(':') {
                names.push(normalise(head).0);
            }
            // DCMTK's JPEG names go by process: "JPEGProcess3_5", "JPEGProcess14SV1".
            // The registry's names of the paired processes are cut at the "&"
            // ("JPEG Extended (Process 3"); the pairs are always N and N+2.
            if let Some(i) = e.name.find("(Process") {
                let inner = e.name.get(i + 1..).unwrap_or("");
                let closed = inner.contains(')');
                let inner = inner.split(')').next().unwrap_or("");
                let digits: String = inner
                    .to_lowercase()
                    .replace("selection value ", "sv")
                    .replace("process", "")
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                match digits.parse::<u32>() {
                    Ok(n) if !closed => {
                        names.push(format!("jpegprocess{n}{}", n + 2));
                        // "JPEG Extended (Process 2 & 4)" as printed in full.
                        names.push(format!("{}{}", normalise(e.name).0, n + 2));
                    }
                    _ => names.push(format!("jpegprocess{digits}")),
                }
            }
            names.sort();
            names.dedup();
            for k in names {
                if k.is_empty() {
                    continue;
                }
                keys.push((k.clone(), e));
                let v = by_key.entry(k).or_default();
                if !v.iter().any(|x| x.uid == e.uid) {
                    v.push(e);
                }
            }
        }
        if kind == Kind::TransferSyntax {
            for (alias, uid) in TRANSFER_SYNTAX_ALIASES {
                if let Some(e) = uid::lookup(uid) {
                    let v = by_key.entry(normalise(alias).0).or_default();
                    if !v.iter().any(|x| x.uid == e.uid) {
                        v.push(e);
                    }
                }
            }
        }
        Index { by_key, keys }
    })
}

/// Spellings of transfer syntaxes seen in real statements and toolkits, beside the
/// registry's own names and keywords.
const TRANSFER_SYNTAX_ALIASES: &[(&str, &str)] = &[
    ("Implicit Little Endian", "1.2.840.10008.1.2"),
    ("Little Endian Implicit", "1.2.840.10008.1.2"),
    ("Implicit VR Little Endian Default", "1.2.840.10008.1.2"),
    ("LittleEndianImplicitTransferSyntax", "1.2.840.10008.1.2"),
    ("ImplicitLittleEndian", "1.2.840.10008.1.2"),
    ("Explicit Little Endian", "1.2.840.10008.1.2.1"),
    ("Little Endian Explicit", "1.2.840.10008.1.2.1"),
    ("LittleEndianExplicitTransferSyntax", "1.2.840.10008.1.2.1"),
    ("Explicit Big Endian", "1.2.840.10008.1.2.2"),
    ("Big Endian Explicit", "1.2.840.10008.1.2.2"),
    ("BigEndianExplicitTransferSyntax", "1.2.840.10008.1.2.2"),
    ("Deflated Explicit Little Endian", "1.2.840.10008.1.2.1.99"),
    (
        "DeflatedExplicitVRLittleEndianTransferSyntax",
        "1.2.840.10008.1.2.1.99",
    ),
    ("Deflate", "1.2.840.10008.1.2.1.99"),
    ("JPEG Baseline", "1.2.840.10008.1.2.4.50"),
    ("JPEG Baseline Process 1", "1.2.840.10008.1.2.4.50"),
    ("JPEG Lossy Baseline", "1.2.840.10008.1.2.4.50"),
    ("JPEGProcess1TransferSyntax", "1.2.840.10008.1.2.4.50"),
    ("JPEG Baseline 8 bit", "1.2.840.10008.1.2.4.50"),
    ("JPEG Extended", "1.2.840.10008.1.2.4.51"),
    ("JPEG Extended Process 2 4", "1.2.840.10008.1.2.4.51"),
    ("JPEGProcess2_4TransferSyntax", "1.2.840.10008.1.2.4.51"),
    ("JPEG Lossless", "1.2.840.10008.1.2.4.57"),
    ("JPEG Lossless Process 14", "1.2.840.10008.1.2.4.57"),
    ("JPEGProcess14TransferSyntax", "1.2.840.10008.1.2.4.57"),
    ("JPEG Lossless SV1", "1.2.840.10008.1.2.4.70"),
    (
        "JPEG Lossless First Order Prediction",
        "1.2.840.10008.1.2.4.70",
    ),
    ("JPEG Lossless Process 14 SV1", "1.2.840.10008.1.2.4.70"),
    ("JPEG Lossless Selection Value 1", "1.2.840.10008.1.2.4.70"),
    ("JPEGProcess14SV1TransferSyntax", "1.2.840.10008.1.2.4.70"),
    ("JPEG LS Lossless", "1.2.840.10008.1.2.4.80"),
    ("JPEGLSLosslessTransferSyntax", "1.2.840.10008.1.2.4.80"),
    ("JPEG LS Lossy", "1.2.840.10008.1.2.4.81"),
    ("JPEG LS Near Lossless", "1.2.840.10008.1.2.4.81"),
    ("JPEGLSLossyTransferSyntax", "1.2.840.10008.1.2.4.81"),
    ("JPEG 2000 Lossless", "1.2.840.10008.1.2.4.90"),
    ("JPEG 2000 Lossless Only", "1.2.840.10008.1.2.4.90"),
    (
        "JPEG 2000 Image Compression Lossless",
        "1.2.840.10008.1.2.4.90",
    ),
    (
        "JPEG2000LosslessOnlyTransferSyntax",
        "1.2.840.10008.1.2.4.90",
    ),
    ("JPEG2K Lossless", "1.2.840.10008.1.2.4.90"),
    ("JPEG 2000", "1.2.840.10008.1.2.4.91"),
    ("JPEG 2000 Lossy", "1.2.840.10008.1.2.4.91"),
    ("JPEG 2000 Lossless or Lossy", "1.2.840.10008.1.2.4.91"),
    ("JPEG2000TransferSyntax", "1.2.840.10008.1.2.4.91"),
    ("JPEG2K", "1.2.840.10008.1.2.4.91"),
    ("RLE", "1.2.840.10008.1.2.5"),
    ("RLE Lossless", "1.2.840.10008.1.2.5"),
    ("RLELosslessTransferSyntax", "1.2.840.10008.1.2.5"),
    (
        "MPEG2 Main Profile at Main Level",
        "1.2.840.10008.1.2.4.100",
    ),
    (
        "MPEG2MainProfileAtMainLevelTransferSyntax",
        "1.2.840.10008.1.2.4.100",
    ),
    (
        "MPEG2 Main Profile at High Level",
        "1.2.840.10008.1.2.4.101",
    ),
    (
        "MPEG2MainProfileAtHighLevelTransferSyntax",
        "1.2.840.10008.1.2.4.101",
    ),
    ("MPEG4 High Profile Level 4.1", "1.2.840.10008.1.2.4.102"),
    (
        "MPEG4HighProfileLevel4_1TransferSyntax",
        "1.2.840.10008.1.2.4.102",
    ),
    (
        "MPEG4 BD compatible High Profile Level 4.1",
        "1.2.840.10008.1.2.4.103",
    ),
    (
        "MPEG4BDcompatibleHighProfileLevel4_1TransferSyntax",
        "1.2.840.10008.1.2.4.103",
    ),
    ("HEVC Main Profile Level 5.1", "1.2.840.10008.1.2.4.107"),
    (
        "HEVCMainProfileLevel5_1TransferSyntax",
        "1.2.840.10008.1.2.4.107",
    ),
    ("HEVC Main 10 Profile Level 5.1", "1.2.840.10008.1.2.4.108"),
    (
        "HEVCMain10ProfileLevel5_1TransferSyntax",
        "1.2.840.10008.1.2.4.108",
    ),
    ("JPIP Referenced", "1.2.840.10008.1.2.4.94"),
    ("JPIP Referenced Deflate", "1.2.840.10008.1.2.4.95"),
];

/// The registry entry `name` denotes, if one does: by keyword or name, then vendor
/// spelling, then a close spelling of a long name (at most 2 edits, one candidate).
/// "(Retired)" in the name picks the retired entry where a current and a retired one share
/// the name.
pub fn resolve(name: &str, kind: Kind) -> Option<Match> {
    let (key, retired) = normalise(name);
    if key.is_empty() {
        return None;
    }
    let idx = index(kind);
    if let Some(v) = idx.by_key.get(&key) {
        let pick = v
            .iter()
            .find(|e| e.retired == retired)
            .or_else(|| v.first())
            .copied()?;
        let is_registry_name = normalise(pick.name).0 == key
            || normalise(pick.alias).0 == key
            || pick
                .name
                .split_once(':')
                .is_some_and(|(h, _)| normalise(h).0 == key);
        return Some(Match {
            entry: pick,
            quality: if is_registry_name {
                Quality::Exact
            } else {
                Quality::Alias
            },
        });
    }
    // Toolkit suffixes ("...TransferSyntax", "...SOPClass") and DCMTK's abbreviations.
    // DCMTK's "FINDPatientRootQueryRetrieveInformationModel": the service first.
    for service in ["find", "move", "get"] {
        if let Some(rest) = key.strip_prefix(service) {
            if rest.ends_with("informationmodel") {
                if let Some(m) = resolve(&format!("{rest}{service}"), kind) {
                    return Some(Match {
                        quality: Quality::Alias,
                        ..m
                    });
                }
            }
        }
    }
    for suffix in ["transfersyntax", "sopclass"] {
        if let Some(stem) = key.strip_suffix(suffix) {
            if let Some(m) = resolve(stem, kind) {
                return Some(Match {
                    quality: Quality::Alias,
                    ..m
                });
            }
        }
    }
    if key.len() < 16 {
        return None;
    }
    let limit = 2;
    let mut best: Option<(usize, &'static UidEntry)> = None;
    let mut tie = false;
    for (k, e) in &idx.keys {
        if k.len().abs_diff(key.len()) > limit {
            continue;
        }
        let Some(d) = bounded_distance(k, &key, limit) else {
            continue;
        };
        match best {
            Some((bd, be)) if d == bd && be.uid != e.uid => tie = true,
            Some((bd, _)) if d >= bd => {}
            _ => {
                best = Some((d, e));
                tie = false;
            }
        }
    }
    match best {
        Some((_, e)) if !tie => Some(Match {
            entry: e,
            quality: Quality::Close,
        }),
        _ => None,
    }
}

/// Levenshtein distance of two ASCII keys when it is at most `limit` (banded, so O(n·limit)).
fn bounded_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur.fill(usize::MAX / 2);
        let lo = (i + 1).saturating_sub(limit);
        let hi = (i + 1 + limit).min(b.len());
        if lo == 0 {
            cur[0] = i + 1;
        }
        let mut row_min = usize::MAX;
        for j in lo.max(1)..=hi {
            let cost = usize::from(b.get(j - 1) != Some(&ca));
            let v = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if lo == 0 {
            row_min = row_min.min(cur[0]);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.get(b.len()).copied().filter(|&d| d <= limit)
}

/// A UID's registry kind, if the registry knows it.
pub fn kind_of_uid(u: &str) -> Option<Kind> {
    uid::lookup(u).and_then(kind_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sop(name: &str) -> Option<&'static str> {
        resolve(name, Kind::SopClass).map(|m| m.entry.alias)
    }
    fn ts(name: &str) -> Option<&'static str> {
        resolve(name, Kind::TransferSyntax).map(|m| m.entry.alias)
    }

    #[test]
    fn names_as_statements_write_them() {
        assert_eq!(
            sop("Storage Commitment Push Model SOP Class"),
            Some("StorageCommitmentPushModel")
        );
        assert_eq!(
            sop("12-lead ECG Waveform Storage"),
            Some("TwelveLeadECGWaveformStorage")
        );
        assert_eq!(
            sop("Ultrasound Multi-frame Image Storage (Retired)").map(|k| k.to_owned()),
            resolve("1.2.840.10008.5.1.4.1.1.3", Kind::SopClass)
                .map(|m| m.entry.alias.to_owned())
                .or(uid::keyword("1.2.840.10008.5.1.4.1.1.3").map(str::to_owned))
        );
        let retired = resolve(
            "Ultrasound Multi-frame Image Storage (Retired)",
            Kind::SopClass,
        );
        assert_eq!(
            retired.map(|m| m.entry.uid),
            Some("1.2.840.10008.5.1.4.1.1.3")
        );
        let current = resolve("Ultrasound Multi-frame Image Storage", Kind::SopClass);
        assert_eq!(
            current.map(|m| m.entry.uid),
            Some("1.2.840.10008.5.1.4.1.1.3.1")
        );
        assert_eq!(
            sop("Digital X-Ray Image Storage - For Processing"),
            Some("DigitalXRayImageStorageForProcessing")
        );
        assert_eq!(
            sop("Digital X-Ray Image Storage\n- For Presentation"),
            Some("DigitalXRayImageStorageForPresentation")
        );
        assert_eq!(sop("CT Image Storage"), Some("CTImageStorage"));
        assert_eq!(sop("CTImageStorage"), Some("CTImageStorage"));
        assert_eq!(sop("Verification SOP Class"), Some("Verification"));
        assert_eq!(
            sop("RETIRED_UltrasoundMultiframeImageStorage").map(|_| ()),
            Some(())
        );
        assert_eq!(
            resolve("RETIRED_UltrasoundMultiframeImageStorage", Kind::SopClass)
                .map(|m| m.entry.uid),
            Some("1.2.840.10008.5.1.4.1.1.3")
        );
        assert_eq!(
            sop("Patient Root Query/Retrieve Information Model - FIND"),
            Some("PatientRootQueryRetrieveInformationModelFind")
        );
        // A typo in a long name is still found, and said to be close.
        let m = resolve("Enhanced MR Imgae Storage", Kind::SopClass);
        assert_eq!(m.map(|m| m.entry.alias), Some("EnhancedMRImageStorage"));
        assert_eq!(m.map(|m| m.quality), Some(Quality::Close));
        assert_eq!(sop("VerificationSOPClass"), Some("Verification"));
        assert_eq!(
            sop("FINDPatientRootQueryRetrieveInformationModel"),
            Some("PatientRootQueryRetrieveInformationModelFind")
        );
        assert_eq!(sop("Coffee Machine Storage"), None);
        assert_eq!(sop(""), None);
    }

    #[test]
    fn transfer_syntaxes_as_vendors_write_them() {
        assert_eq!(
            ts("Implicit VR Little Endian"),
            Some("ImplicitVRLittleEndian")
        );
        assert_eq!(
            ts("LittleEndianImplicitTransferSyntax"),
            Some("ImplicitVRLittleEndian")
        );
        assert_eq!(ts("JPEG Lossless SV1"), Some("JPEGLosslessSV1"));
        assert_eq!(ts("JPEG Baseline (Process 1)"), Some("JPEGBaseline8Bit"));
        assert_eq!(
            ts("JPEG 2000 Image Compression (Lossless Only)"),
            Some("JPEG2000Lossless")
        );
        assert_eq!(ts("RLE Lossless"), Some("RLELossless"));
        assert_eq!(ts("JPEGProcess3_5TransferSyntax").map(|_| ()), Some(()));
        assert_eq!(
            resolve("JPEG Process3_5Transfer Syntax", Kind::TransferSyntax).map(|m| m.entry.uid),
            Some("1.2.840.10008.1.2.4.52")
        );
        assert_eq!(
            ts("JPEGProcess14SV1TransferSyntax"),
            Some("JPEGLosslessSV1")
        );
        assert_eq!(ts("Explicit VR Big Endian"), Some("ExplicitVRBigEndian"));
        assert_eq!(
            ts("Deflated Explicit VR Little Endian"),
            Some("DeflatedExplicitVRLittleEndian")
        );
        // A SOP class is not a transfer syntax.
        assert_eq!(ts("CT Image Storage"), None);
    }

    #[test]
    fn distance_is_bounded_and_right() {
        assert_eq!(bounded_distance("kitten", "sitting", 3), Some(3));
        assert_eq!(bounded_distance("kitten", "sitting", 2), None);
        assert_eq!(bounded_distance("abc", "abc", 0), Some(0));
        assert_eq!(bounded_distance("", "ab", 2), Some(2));
    }
}
