//! Transfer syntaxes: how a data set on a presentation context is encoded.
//!
//! The engine only needs the byte-level encoding of the data set (VR explicit or not, byte
//! order, deflated or not) to peek at it; compression of the pixel data does not matter
//! because the peek stops at Pixel Data. The table below is the transfer syntax registry
//! of PS3.6 Annex A (retired syntaxes included: old devices still propose them).

use serde::Serialize;

/// The byte-level encoding a transfer syntax implies for the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    ImplicitVrLittleEndian,
    ExplicitVrLittleEndian,
    ExplicitVrBigEndian,
    /// Deflated Explicit VR Little Endian (the whole data set is raw-deflated).
    DeflatedExplicitVrLittleEndian,
    /// Explicit VR Little Endian with encapsulated pixel data (JPEG, RLE, JPEG 2000...).
    Encapsulated,
    /// Not in the registry (a private syntax): the engine does not guess.
    Unknown,
}

impl Encoding {
    /// The encoding in words, for messages ("explicit VR little endian").
    pub fn describe(self) -> &'static str {
        match self {
            Encoding::ImplicitVrLittleEndian => "implicit VR little endian",
            Encoding::ExplicitVrLittleEndian => "explicit VR little endian",
            Encoding::ExplicitVrBigEndian => "explicit VR big endian",
            Encoding::DeflatedExplicitVrLittleEndian => "deflated explicit VR little endian",
            Encoding::Encapsulated => "explicit VR little endian, encapsulated pixel data",
            _ => "a private encoding",
        }
    }
}

/// A standard transfer syntax: its UID, its name in PS3.6 and the encoding it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransferSyntax {
    pub uid: &'static str,
    pub name: &'static str,
    pub encoding: Encoding,
    /// Retired from the standard (still seen on the wire from older devices).
    pub retired: bool,
}

const fn ts(uid: &'static str, name: &'static str, encoding: Encoding) -> TransferSyntax {
    TransferSyntax {
        uid,
        name,
        encoding,
        retired: false,
    }
}

const fn retired(uid: &'static str, name: &'static str, encoding: Encoding) -> TransferSyntax {
    TransferSyntax {
        uid,
        name,
        encoding,
        retired: true,
    }
}

use Encoding::{
    DeflatedExplicitVrLittleEndian as Deflated, Encapsulated as Encap,
    ExplicitVrBigEndian as ExplicitBe, ExplicitVrLittleEndian as ExplicitLe,
    ImplicitVrLittleEndian as ImplicitLe,
};

/// Every transfer syntax of PS3.6 Table A-1 that describes a binary data set encoding.
/// The JPIP and SMPTE ST 2110 syntaxes carry no Pixel Data in the data set at all, but
/// their data set is Explicit VR Little Endian (deflated for the "Deflate" JPIP ones),
/// which is all the peek needs.
pub const REGISTRY: &[TransferSyntax] = &[
    ts("1.2.840.10008.1.2", "Implicit VR Little Endian", ImplicitLe),
    ts(
        "1.2.840.10008.1.2.1",
        "Explicit VR Little Endian",
        ExplicitLe,
    ),
    ts(
        "1.2.840.10008.1.2.1.98",
        "Encapsulated Uncompressed Explicit VR Little Endian",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.1.99",
        "Deflated Explicit VR Little Endian",
        Deflated,
    ),
    retired("1.2.840.10008.1.2.2", "Explicit VR Big Endian", ExplicitBe),
    ts("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", Encap),
    ts(
        "1.2.840.10008.1.2.4.51",
        "JPEG Extended (Process 2 & 4)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.52",
        "JPEG Extended (Process 3 & 5)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.53",
        "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.54",
        "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.55",
        "JPEG Full Progression, Non-Hierarchical (Process 10 & 12)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.56",
        "JPEG Full Progression, Non-Hierarchical (Process 11 & 13)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.57",
        "JPEG Lossless, Non-Hierarchical (Process 14)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.58",
        "JPEG Lossless, Non-Hierarchical (Process 15)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.59",
        "JPEG Extended, Hierarchical (Process 16 & 18)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.60",
        "JPEG Extended, Hierarchical (Process 17 & 19)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.61",
        "JPEG Spectral Selection, Hierarchical (Process 20 & 22)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.62",
        "JPEG Spectral Selection, Hierarchical (Process 21 & 23)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.63",
        "JPEG Full Progression, Hierarchical (Process 24 & 26)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.64",
        "JPEG Full Progression, Hierarchical (Process 25 & 27)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.65",
        "JPEG Lossless, Hierarchical (Process 28)",
        Encap,
    ),
    retired(
        "1.2.840.10008.1.2.4.66",
        "JPEG Lossless, Hierarchical (Process 29)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
        Encap,
    ),
    ts("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", Encap),
    ts(
        "1.2.840.10008.1.2.4.81",
        "JPEG-LS Lossy (Near-Lossless)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.90",
        "JPEG 2000 Image Compression (Lossless Only)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.91",
        "JPEG 2000 Image Compression",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.92",
        "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.93",
        "JPEG 2000 Part 2 Multi-component Image Compression",
        Encap,
    ),
    ts("1.2.840.10008.1.2.4.94", "JPIP Referenced", Encap),
    ts(
        "1.2.840.10008.1.2.4.95",
        "JPIP Referenced Deflate",
        Deflated,
    ),
    ts(
        "1.2.840.10008.1.2.4.100",
        "MPEG2 Main Profile / Main Level",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.100.1",
        "Fragmentable MPEG2 Main Profile / Main Level",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.101",
        "MPEG2 Main Profile / High Level",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.101.1",
        "Fragmentable MPEG2 Main Profile / High Level",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.102",
        "MPEG-4 AVC/H.264 High Profile / Level 4.1",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.102.1",
        "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.103",
        "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.103.1",
        "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.104",
        "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.104.1",
        "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.105",
        "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.105.1",
        "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.106",
        "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.106.1",
        "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.107",
        "HEVC/H.265 Main Profile / Level 5.1",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.108",
        "HEVC/H.265 Main 10 Profile / Level 5.1",
        Encap,
    ),
    ts("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", Encap),
    ts(
        "1.2.840.10008.1.2.4.111",
        "JPEG XL JPEG Recompression",
        Encap,
    ),
    ts("1.2.840.10008.1.2.4.112", "JPEG XL", Encap),
    ts(
        "1.2.840.10008.1.2.4.201",
        "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.202",
        "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.4.203",
        "High-Throughput JPEG 2000 Image Compression",
        Encap,
    ),
    ts("1.2.840.10008.1.2.4.204", "JPIP HTJ2K Referenced", Encap),
    ts(
        "1.2.840.10008.1.2.4.205",
        "JPIP HTJ2K Referenced Deflate",
        Deflated,
    ),
    ts("1.2.840.10008.1.2.5", "RLE Lossless", Encap),
    ts(
        "1.2.840.10008.1.2.7.1",
        "SMPTE ST 2110-20 Uncompressed Progressive Active Video",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.7.2",
        "SMPTE ST 2110-20 Uncompressed Interlaced Active Video",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.7.3",
        "SMPTE ST 2110-30 PCM Digital Audio",
        Encap,
    ),
    ts(
        "1.2.840.10008.1.2.8.1",
        "Deflated Image Frame Compression",
        Encap,
    ),
];

/// Implicit VR Little Endian: the default transfer syntax (PS3.5 10.1).
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Looks `uid` up in [`REGISTRY`]. Trailing NUL and space padding (seen from real
/// devices, and the even-length padding of UI values) is ignored.
pub fn lookup(uid: &str) -> Option<&'static TransferSyntax> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    REGISTRY.iter().find(|ts| ts.uid == uid)
}

/// The encoding of the transfer syntax `uid`; [`Encoding::Unknown`] for private or
/// unregistered syntaxes (and the retired MIME/XML syntaxes, which are not binary data
/// set encodings).
pub fn encoding_of(uid: &str) -> Encoding {
    lookup(uid).map_or(Encoding::Unknown, |ts| ts.encoding)
}

/// The PS3.6 name of the transfer syntax `uid`, if it is a standard one.
pub fn name_of(uid: &str) -> Option<&'static str> {
    lookup(uid).map(|ts| ts.name)
}

/// Whether data elements carry their VR on the wire. `false` for [`Encoding::Unknown`]:
/// callers must not decode a data set of an unknown encoding at all.
pub fn is_explicit_vr(encoding: Encoding) -> bool {
    matches!(
        encoding,
        Encoding::ExplicitVrLittleEndian
            | Encoding::ExplicitVrBigEndian
            | Encoding::DeflatedExplicitVrLittleEndian
            | Encoding::Encapsulated
    )
}

/// Whether tags and lengths are little endian. `false` for [`Encoding::Unknown`]
/// (nothing can be said), so check for `Unknown` first.
pub fn is_little_endian(encoding: Encoding) -> bool {
    matches!(
        encoding,
        Encoding::ImplicitVrLittleEndian
            | Encoding::ExplicitVrLittleEndian
            | Encoding::DeflatedExplicitVrLittleEndian
            | Encoding::Encapsulated
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_syntaxes() {
        assert_eq!(
            encoding_of("1.2.840.10008.1.2"),
            Encoding::ImplicitVrLittleEndian
        );
        assert_eq!(
            encoding_of("1.2.840.10008.1.2.1\0"),
            Encoding::ExplicitVrLittleEndian
        );
        assert_eq!(
            encoding_of("1.2.840.10008.1.2.2"),
            Encoding::ExplicitVrBigEndian
        );
        assert_eq!(
            encoding_of("1.2.840.10008.1.2.1.99"),
            Encoding::DeflatedExplicitVrLittleEndian
        );
    }

    #[test]
    fn encapsulated_syntaxes() {
        for uid in [
            "1.2.840.10008.1.2.4.50",
            "1.2.840.10008.1.2.4.57",
            "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.4.91",
            "1.2.840.10008.1.2.4.100.1",
            "1.2.840.10008.1.2.4.107",
            "1.2.840.10008.1.2.4.201",
            "1.2.840.10008.1.2.4.203",
            "1.2.840.10008.1.2.5",
            "1.2.840.10008.1.2.7.1",
            "1.2.840.10008.1.2.8.1",
            "1.2.840.10008.1.2.1.98",
        ] {
            assert_eq!(encoding_of(uid), Encoding::Encapsulated, "{uid}");
        }
        assert_eq!(
            encoding_of("1.2.840.10008.1.2.4.95"),
            Encoding::DeflatedExplicitVrLittleEndian
        );
    }

    #[test]
    fn unknown_syntaxes() {
        for uid in [
            "",
            "1.2.3.4",
            "1.2.840.10008.1.2.6.1",
            "1.2.840.10008.1.2.4",
        ] {
            assert_eq!(encoding_of(uid), Encoding::Unknown, "{uid}");
        }
        assert!(!is_explicit_vr(Encoding::Unknown));
        assert!(!is_little_endian(Encoding::Unknown));
    }

    #[test]
    fn registry_has_no_duplicates() {
        for (i, a) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[i + 1..].iter().all(|b| b.uid != a.uid),
                "{}",
                a.uid
            );
        }
    }

    #[test]
    fn flags() {
        assert!(!is_explicit_vr(Encoding::ImplicitVrLittleEndian));
        assert!(is_explicit_vr(Encoding::Encapsulated));
        assert!(!is_little_endian(Encoding::ExplicitVrBigEndian));
        assert!(is_little_endian(Encoding::DeflatedExplicitVrLittleEndian));
        assert_eq!(name_of("1.2.840.10008.1.2.5"), Some("RLE Lossless"));
    }
}
