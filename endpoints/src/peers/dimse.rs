//! The few DIMSE command sets the embedded peers exchange (C-ECHO, C-STORE), encoded and
//! decoded with dicom-object in Implicit VR Little Endian as PS3.7 6.3.1 requires.
//!
//! This is the peers' own small codec, deliberately not `dicomtap_wire::dimse`: the demo
//! and the tests check the observer's decoder against traffic it did not produce itself.
//! A test below holds the two encoders to the same bytes.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::{IMPLICIT_VR_LE_TS, PeerError, trim_uid};

/// Command Field values used by the peers (PS3.7 E.1).
pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;

/// (0000,0800) value meaning "no data set follows".
pub const NO_DATASET: u16 = 0x0101;
/// (0000,0800) value the peers write when a data set follows (any other value means the
/// same on reading).
pub const DATASET_PRESENT: u16 = 0x0000;

/// Status codes the peers answer with.
pub const STATUS_SUCCESS: u16 = 0x0000;
/// Refused: out of resources (PS3.4 B.2.3), used when an object exceeds the SCP's cap.
pub const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: cannot understand (PS3.4 B.2.3), used when the data set cannot be stored.
pub const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;
/// Unrecognized operation (PS3.7 C.4.2).
pub const STATUS_UNRECOGNIZED_OPERATION: u16 = 0x0211;

/// The fields of a command set the peers act on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSet {
    pub command_field: u16,
    pub message_id: Option<u16>,
    pub responded_to: Option<u16>,
    pub affected_sop_class: Option<String>,
    pub affected_sop_instance: Option<String>,
    pub priority: Option<u16>,
    pub status: Option<u16>,
    pub has_dataset: bool,
    pub error_comment: Option<String>,
}

impl CommandSet {
    /// A C-ECHO-RQ.
    pub fn echo_rq(message_id: u16) -> Self {
        CommandSet {
            command_field: C_ECHO_RQ,
            message_id: Some(message_id),
            affected_sop_class: Some(super::VERIFICATION.to_string()),
            ..Default::default()
        }
    }

    /// A C-STORE-RQ with medium priority; a data set follows.
    pub fn store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Self {
        CommandSet {
            command_field: C_STORE_RQ,
            message_id: Some(message_id),
            affected_sop_class: Some(sop_class.to_string()),
            affected_sop_instance: Some(sop_instance.to_string()),
            priority: Some(0),
            has_dataset: true,
            ..Default::default()
        }
    }

    /// The response to `self` (a request) with `status`.
    pub fn response(&self, status: u16) -> Self {
        CommandSet {
            command_field: self.command_field | 0x8000,
            responded_to: self.message_id,
            affected_sop_class: self.affected_sop_class.clone(),
            affected_sop_instance: self.affected_sop_instance.clone(),
            status: Some(status),
            ..Default::default()
        }
    }

    /// Encodes the command set in Implicit VR Little Endian, with its group length.
    pub fn encode(&self) -> Result<Vec<u8>, PeerError> {
        fn us(tag: Tag, v: u16) -> DataElement<InMemDicomObject> {
            DataElement::new(tag, VR::US, PrimitiveValue::from(v))
        }
        fn ui(tag: Tag, v: &str) -> DataElement<InMemDicomObject> {
            DataElement::new(tag, VR::UI, PrimitiveValue::from(v))
        }
        let mut elements = Vec::with_capacity(9);
        if let Some(class) = &self.affected_sop_class {
            elements.push(ui(tags::AFFECTED_SOP_CLASS_UID, class));
        }
        elements.push(us(tags::COMMAND_FIELD, self.command_field));
        if let Some(id) = self.message_id {
            elements.push(us(tags::MESSAGE_ID, id));
        }
        if let Some(id) = self.responded_to {
            elements.push(us(tags::MESSAGE_ID_BEING_RESPONDED_TO, id));
        }
        if let Some(p) = self.priority {
            elements.push(us(tags::PRIORITY, p));
        }
        elements.push(us(
            tags::COMMAND_DATA_SET_TYPE,
            if self.has_dataset {
                DATASET_PRESENT
            } else {
                NO_DATASET
            },
        ));
        if let Some(s) = self.status {
            elements.push(us(tags::STATUS, s));
        }
        if let Some(c) = &self.error_comment {
            elements.push(DataElement::new(
                tags::ERROR_COMMENT,
                VR::LO,
                PrimitiveValue::from(c.as_str()),
            ));
        }
        if let Some(inst) = &self.affected_sop_instance {
            elements.push(ui(tags::AFFECTED_SOP_INSTANCE_UID, inst));
        }
        let obj = InMemDicomObject::command_from_element_iter(elements);
        let mut out = Vec::with_capacity(160);
        obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LE_TS)
            .map_err(|e| PeerError::Dimse(format!("encoding command set: {e}")))?;
        Ok(out)
    }

    /// Decodes a command set received from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, PeerError> {
        let obj = InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LE_TS)
            .map_err(|e| PeerError::Dimse(format!("decoding command set: {e}")))?;
        let us = |tag: Tag| -> Option<u16> { obj.get(tag).and_then(|e| e.to_int::<u16>().ok()) };
        let text = |tag: Tag| -> Option<String> {
            obj.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| trim_uid(s.trim()).to_string())
        };
        let command_field = us(tags::COMMAND_FIELD)
            .ok_or_else(|| PeerError::Dimse("command set without Command Field".into()))?;
        Ok(CommandSet {
            command_field,
            message_id: us(tags::MESSAGE_ID),
            responded_to: us(tags::MESSAGE_ID_BEING_RESPONDED_TO),
            affected_sop_class: text(tags::AFFECTED_SOP_CLASS_UID),
            affected_sop_instance: text(tags::AFFECTED_SOP_INSTANCE_UID),
            priority: us(tags::PRIORITY),
            status: us(tags::STATUS),
            has_dataset: us(tags::COMMAND_DATA_SET_TYPE).is_some_and(|v| v != NO_DATASET),
            error_comment: text(tags::ERROR_COMMENT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_rq_round_trips_with_even_lengths() -> Result<(), PeerError> {
        let rq = CommandSet::store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "2.25.123");
        let bytes = rq.encode()?;
        // Group length element first: (0000,0000) UL 4, value = bytes after it.
        assert_eq!(&bytes[..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let group_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        assert_eq!(group_len as usize, bytes.len() - 12);
        assert_eq!(bytes.len() % 2, 0);
        let back = CommandSet::decode(&bytes)?;
        assert_eq!(back, rq);
        let rsp = back.response(STATUS_SUCCESS);
        let back_rsp = CommandSet::decode(&rsp.encode()?)?;
        assert_eq!(back_rsp.command_field, C_STORE_RSP);
        assert_eq!(back_rsp.responded_to, Some(7));
        assert_eq!(back_rsp.status, Some(0));
        assert!(!back_rsp.has_dataset);
        Ok(())
    }

    /// The peers' codec (dicom-object) and the observer's (dicomtap-wire) are written
    /// independently; they must agree byte for byte, or one of them is wrong.
    #[test]
    fn agrees_with_the_wire_codec() -> Result<(), PeerError> {
        let rq = CommandSet::store_rq(3, "1.2.840.10008.5.1.4.1.1.7", "2.25.12345");
        let ours = rq.encode()?;
        let theirs = dicomtap_wire::dimse::encode_command(&dicomtap_wire::dimse::Command {
            command_field: C_STORE_RQ,
            message_id: Some(3),
            affected_sop_class: Some("1.2.840.10008.5.1.4.1.1.7".into()),
            affected_sop_instance: Some("2.25.12345".into()),
            priority: Some(0),
            has_dataset: true,
            // Any value but 0x0101 means "data set present"; both sides then write ours.
            data_set_type: Some(DATASET_PRESENT),
            ..Default::default()
        });
        assert_eq!(ours, theirs);

        let rsp = rq.response(STATUS_SUCCESS).encode()?;
        let decoded = dicomtap_wire::dimse::decode_command(&rsp)
            .map_err(|e| PeerError::Dimse(e.to_string()))?;
        assert_eq!(decoded.command_field, C_STORE_RSP);
        assert_eq!(decoded.responded_to, Some(3));
        assert!(!decoded.has_dataset);
        assert_eq!(decoded.affected_sop_instance.as_deref(), Some("2.25.12345"));
        assert_eq!(decoded.status.map(|s| s.code), Some("0000".to_string()));
        Ok(())
    }

    #[test]
    fn echo_rq_has_no_dataset() -> Result<(), PeerError> {
        let back = CommandSet::decode(&CommandSet::echo_rq(1).encode()?)?;
        assert_eq!(back.command_field, C_ECHO_RQ);
        assert!(!back.has_dataset);
        assert_eq!(
            back.affected_sop_class.as_deref(),
            Some(super::super::VERIFICATION)
        );
        Ok(())
    }
}
