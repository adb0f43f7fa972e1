//! Transfer syntaxes: how a data set on a presentation context is encoded.

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

/// The encoding of the transfer syntax `uid`.
pub fn encoding_of(uid: &str) -> Encoding {
    match uid {
        "1.2.840.10008.1.2" => Encoding::ImplicitVrLittleEndian,
        "1.2.840.10008.1.2.1" => Encoding::ExplicitVrLittleEndian,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitVrBigEndian,
        "1.2.840.10008.1.2.1.99" => Encoding::DeflatedExplicitVrLittleEndian,
        _ => Encoding::Unknown,
    }
}
