//! Embedded DICOM peers built on dicom-ul's synchronous association API: a storage SCP
//! ([`scp`]), a storage SCU ([`scu`]) and a generated study to send ([`study`]).
//!
//! They exist so that `dicomtap demo` and the tests have two real DICOM nodes to put the
//! proxy between, without installing anything. dicom-ul 0.10's association API is
//! blocking unless its `async` feature is on, so the peers run on their own std threads
//! (the SCP) or are meant to be called from `spawn_blocking` (the SCU); they never block
//! a tokio worker. The SCP binds loopback only.

pub mod dimse;
pub mod iods;
pub mod scp;
pub mod scu;
pub mod study;

use std::io::Write;

use dicom_encoding::{Codec, Endianness, TransferSyntax};
use serde::Serialize;

/// A P-DATA-TF holding `command` whole in one PDV on `pc_id` (command sets are small).
/// The peers send through dicom-ul's association, which encodes its own `Pdu`s, so this
/// is the one place they are built.
pub(crate) fn command_pdu(
    pc_id: u8,
    command: &dimse::CommandSet,
) -> Result<dicom_ul::pdu::Pdu, PeerError> {
    Ok(dicom_ul::pdu::Pdu::PData {
        data: vec![dicom_ul::pdu::PDataValue {
            presentation_context_id: pc_id,
            value_type: dicom_ul::pdu::PDataValueType::Command,
            is_last: true,
            data: command.encode()?,
        }],
    })
}

/// Verification SOP class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Implicit VR Little Endian (the default transfer syntax) and Explicit VR Little Endian.
pub use dicomtap_wire::syntax::{
    EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_VR_LE, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_VR_LE,
};

/// The two uncompressed little-endian syntaxes the peers speak. Built here rather than
/// taken from a registry crate, because these two are all the peers need and the
/// registry is not a direct dependency.
pub(crate) const IMPLICIT_VR_LE_TS: TransferSyntax = TransferSyntax::new(
    IMPLICIT_VR_LE,
    "Implicit VR Little Endian",
    Endianness::Little,
    false,
    Codec::None,
);
pub(crate) const EXPLICIT_VR_LE_TS: TransferSyntax = TransferSyntax::new(
    EXPLICIT_VR_LE,
    "Explicit VR Little Endian",
    Endianness::Little,
    true,
    Codec::None,
);

/// The transfer syntax descriptor for `uid`, if it is one the peers can encode.
pub(crate) fn transfer_syntax(uid: &str) -> Option<&'static TransferSyntax> {
    static IMPLICIT: TransferSyntax = IMPLICIT_VR_LE_TS;
    static EXPLICIT: TransferSyntax = EXPLICIT_VR_LE_TS;
    match uid.trim_end_matches(['\0', ' ']) {
        IMPLICIT_VR_LE => Some(&IMPLICIT),
        EXPLICIT_VR_LE => Some(&EXPLICIT),
        _ => None,
    }
}

/// Errors of the embedded peers.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("I/O error on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("association with {addr}: {source}")]
    Association {
        addr: String,
        #[source]
        source: Box<dicom_ul::association::Error>,
    },
    #[error("DIMSE: {0}")]
    Dimse(String),
    #[error("encoding a data set: {0}")]
    Encode(String),
    #[error("the peer answered with an unexpected PDU: {0}")]
    UnexpectedPdu(String),
    #[error("no presentation context was accepted for {0}")]
    NoContext(String),
    #[error("peers bind to loopback only, {0} is not a loopback address")]
    NotLoopback(std::net::SocketAddr),
}

impl PeerError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PeerError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn association(addr: impl ToString, source: dicom_ul::association::Error) -> Self {
        PeerError::Association {
            addr: addr.to_string(),
            source: Box::new(source),
        }
    }
}

/// A data set already encoded in its transfer syntax. The bytes are kept as sent so the
/// receiving side can be checked byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncodedObject {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    /// The data set (no preamble, no file meta group).
    #[serde(skip)]
    pub dataset: Vec<u8>,
}

impl EncodedObject {
    /// The object as a DICOM Part-10 file: preamble, "DICM", file meta group, then the data
    /// set bytes unchanged (so a stored file holds exactly what came over the wire).
    pub fn to_part10(&self, source_ae: Option<&str>) -> Result<Vec<u8>, PeerError> {
        let mut meta = dicom_object::FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(self.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(self.sop_instance_uid.as_str())
            .transfer_syntax(self.transfer_syntax.as_str())
            .implementation_class_uid(dicom_ul::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(dicom_ul::IMPLEMENTATION_VERSION_NAME);
        if let Some(ae) = source_ae {
            meta = meta.source_application_entity_title(ae);
        }
        let meta = meta.build().map_err(|e| PeerError::Encode(e.to_string()))?;
        let mut out = Vec::with_capacity(132 + 256 + self.dataset.len());
        out.extend_from_slice(&[0u8; 128]);
        out.extend_from_slice(b"DICM");
        meta.write(&mut out)
            .map_err(|e| PeerError::Encode(e.to_string()))?;
        out.write_all(&self.dataset)
            .map_err(|e| PeerError::io("file buffer", e))?;
        Ok(out)
    }
}

/// A negotiated presentation context, as either peer saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NegotiatedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntax: String,
    pub accepted: bool,
}

impl From<&dicom_ul::pdu::PresentationContextNegotiated> for NegotiatedContext {
    fn from(pc: &dicom_ul::pdu::PresentationContextNegotiated) -> Self {
        NegotiatedContext {
            id: pc.id,
            abstract_syntax: trim_uid(&pc.abstract_syntax).to_string(),
            transfer_syntax: trim_uid(&pc.transfer_syntax).to_string(),
            accepted: pc.reason == dicom_ul::pdu::PresentationContextResultReason::Acceptance,
        }
    }
}

/// UIDs arrive NUL- or space-padded to even length.
pub(crate) fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

/// The registry keyword of a SOP class UID ("CTImageStorage"), or the UID itself.
pub fn sop_class_keyword(uid: &str) -> String {
    use dicom_core::dictionary::UidDictionary;
    let uid = trim_uid(uid);
    dicom_dictionary_std::sop_class::StandardSopClassDictionary
        .by_uid(uid)
        .map(|e| e.alias.to_string())
        .unwrap_or_else(|| uid.to_string())
}

/// Is this address on loopback? The peers refuse anything else: they accept any AE title
/// and store whatever they get, which is fine on 127.0.0.1 and not beyond.
pub(crate) fn ensure_loopback(addr: std::net::SocketAddr) -> Result<(), PeerError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(PeerError::NotLoopback(addr))
    }
}

#[cfg(test)]
mod tests;
