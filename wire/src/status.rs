//! DIMSE status codes: their class (PS3.7 Annex C) and meaning, including the
//! service-specific statuses of PS3.4.
//!
//! Service-specific codes collide between services (B000 is a coercion warning for C-STORE
//! but "sub-operations complete, one or more failures" for C-MOVE), so the meaning depends
//! on the command the status came back in. The class never does: it follows PS3.7 C.1 from
//! the code alone, so metrics stay comparable across services.

use serde::Serialize;

/// The class of a status, as PS3.7 C.1 groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    Success,
    Warning,
    Failure,
    Cancel,
    Pending,
}

impl StatusClass {
    /// The class of `code` (PS3.7 C.1): anything not success, cancel, pending or a warning
    /// is a failure, including codes no part of the standard defines.
    pub fn of(code: u16) -> StatusClass {
        match code {
            0x0000 => StatusClass::Success,
            0xFE00 => StatusClass::Cancel,
            0xFF00 | 0xFF01 => StatusClass::Pending,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusClass::Warning,
            _ => StatusClass::Failure,
        }
    }

    /// The snake_case name, as in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "success",
            StatusClass::Warning => "warning",
            StatusClass::Failure => "failure",
            StatusClass::Cancel => "cancel",
            StatusClass::Pending => "pending",
        }
    }

    /// A final status ends the exchange; pending ones announce more responses.
    pub fn is_final(self) -> bool {
        self != StatusClass::Pending
    }
}

impl std::fmt::Display for StatusClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status with its class and meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The code as four hex digits, e.g. "A700".
    pub code: String,
    /// The code as sent.
    pub value: u16,
    pub class: StatusClass,
    /// What PS3.7/PS3.4 say the code means for this service, or "unknown status code".
    pub meaning: &'static str,
    /// The code is defined, generally or for the service it came back in. An unknown code
    /// is still classified (as a failure, mostly) but is worth a conformance finding.
    pub known: bool,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // "0000 (success)" rather than "0000 (success)".
        if self.meaning == self.class.as_str() {
            write!(f, "{} ({})", self.code, self.class)
        } else {
            write!(f, "{} ({}: {})", self.code, self.class, self.meaning)
        }
    }
}

const UNKNOWN: &str = "unknown status code";

/// Classifies `code` as returned in a response with `command_field` (the request's field
/// works as well: bit 0x8000 is ignored).
pub fn classify(code: u16, command_field: u16) -> Status {
    let (meaning, known) = match meaning(code, command_field & 0x7FFF) {
        Some(m) => (m, true),
        None => (UNKNOWN, false),
    };
    Status {
        code: hex4(code),
        value: code,
        class: StatusClass::of(code),
        meaning,
        known,
    }
}

/// `code` as four upper-case hex digits, like `format!("{code:04X}")` without the
/// formatting machinery (every response status goes through here).
fn hex4(code: u16) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(4);
    for shift in [12, 8, 4, 0] {
        s.push(char::from(DIGITS[usize::from((code >> shift) & 0xF)]));
    }
    s
}

/// The meaning of `code` for the request field `service` (0x8000 cleared), service tables
/// first, then the general statuses of PS3.7 Annex C.
fn meaning(code: u16, service: u16) -> Option<&'static str> {
    let specific = match service {
        0x0001 => storage(code),
        0x0020 => find(code),
        0x0021 => retrieve(code, true),
        0x0010 => retrieve(code, false),
        0x0100..=0x0150 => normalized(code),
        _ => None,
    };
    specific.or_else(|| general(code))
}

/// PS3.7 Annex C, valid for every service.
fn general(code: u16) -> Option<&'static str> {
    Some(match code {
        0x0000 => "success",
        0x0001 => "requested optional attributes are not supported",
        0x0105 => "no such attribute",
        0x0106 => "invalid attribute value",
        0x0107 => "attribute list error",
        0x0110 => "processing failure",
        0x0111 => "duplicate SOP instance",
        0x0112 => "no such SOP instance",
        0x0113 => "no such event type",
        0x0114 => "no such argument",
        0x0115 => "invalid argument value",
        0x0116 => "attribute value out of range",
        0x0117 => "invalid object instance",
        0x0118 => "no such SOP class",
        0x0119 => "class-instance conflict",
        0x0120 => "missing attribute",
        0x0121 => "missing attribute value",
        0x0122 => "refused: SOP class not supported",
        0x0123 => "no such action",
        0x0124 => "refused: not authorized",
        0x0210 => "duplicate invocation",
        0x0211 => "unrecognized operation",
        0x0212 => "mistyped argument",
        0x0213 => "resource limitation",
        0xFE00 => "cancel",
        0xFF00 | 0xFF01 => "pending",
        _ => return None,
    })
}

/// Storage service class, PS3.4 B.2.3 (also Non-Patient Object Storage, GG).
fn storage(code: u16) -> Option<&'static str> {
    Some(match code {
        0x0000 => "success",
        0xA700..=0xA7FF => "out of resources",
        0xA900..=0xA9FF => "data set does not match SOP class",
        0xC000..=0xCFFF => "cannot understand",
        0xB000 => "coercion of data elements",
        0xB006 => "elements discarded",
        0xB007 => "data set does not match SOP class",
        _ => return None,
    })
}

/// C-FIND: Query/Retrieve C.4.1.1.4, Modality Worklist K, Relevant Patient Information Q,
/// Substance Administration V, UPS CC (and the other FIND-based services, which reuse it).
fn find(code: u16) -> Option<&'static str> {
    Some(match code {
        0x0000 => "matching complete",
        0xA700 => "out of resources",
        0xA900 => "identifier does not match SOP class",
        0xC100 => "unable to process: more than one match found (relevant patient information)",
        0xC200 => {
            "unable to process: unable to support requested template (relevant patient information)"
        }
        0xC000..=0xCFFF => "unable to process",
        0xFE00 => "matching terminated due to cancel",
        0xFF00 => "matches are continuing, current match supplied",
        0xFF01 => "matches are continuing, one or more optional keys were not supported",
        _ => return None,
    })
}

/// C-MOVE (C.4.2.1.5) and C-GET (C.4.3.1.4), with the frame-level and bulk-data-free
/// retrieve codes of Annex Y.
fn retrieve(code: u16, is_move: bool) -> Option<&'static str> {
    Some(match code {
        0x0000 => "sub-operations complete, no failures",
        0xA701 => "out of resources: unable to calculate number of matches",
        0xA702 => "out of resources: unable to perform sub-operations",
        0xA801 if is_move => "move destination unknown",
        0xA900 => "identifier does not match SOP class",
        0xAA00 => "none of the frames requested were found in the SOP instance",
        0xAA01 => "unable to create new object for this SOP class",
        0xAA02 => "unable to extract frames",
        0xAA03 => "time-based request received for a non-time-based original SOP instance",
        0xAA04 => "invalid request",
        0xC000..=0xCFFF => "unable to process",
        0xB000 => "sub-operations complete, one or more failures or warnings",
        0xFE00 => "sub-operations terminated due to cancel",
        0xFF00 => "sub-operations are continuing",
        _ => return None,
    })
}

/// Service-specific codes of the N- services. Their ranges do not collide across the
/// services that define them: Application Event Logging (PS3.4 P), Media Creation (S),
/// Unified Procedure Step (CC), Print Management (H), RT Machine Verification (DD); Storage
/// Commitment (J) and MPPS (F) use general codes only.
fn normalized(code: u16) -> Option<&'static str> {
    Some(match code {
        // Application Event Logging.
        0xB101 => "synchronization frame of reference UID does not match the SCP's",
        0xB102 => "study instance UID coercion: event logged under a different study",
        0xB104 => "IDs inconsistent in matching a current study: event logged",
        0xC101 => "procedural logging not available for the specified study instance UID",
        0xC102 => "event information does not match template",
        0xC103 => "cannot match event to a current study",
        0xC104 => "IDs inconsistent in matching a current study: event not logged",
        0xC10E => "operator not authorized to add entry to medication administration record",
        0xC110 => "patient cannot be identified from patient ID or admission ID",
        0xC111 => "update of medication administration record failed",
        // RT Machine Verification.
        0xC112 => "no such object instance: applicable machine verification instance not found",
        0xC221 => "referenced fraction group number does not exist in the referenced plan",
        0xC222 => "no beams exist within the referenced fraction group",
        0xC223 => "SCU already verifying and cannot currently process this request",
        0xC224 => "referenced beam number not found within the referenced fraction group",
        0xC225 => "referenced device or accessory not supported",
        0xC226 => "referenced device or accessory not found within the referenced beam",
        0xC227 => "no such object instance: referenced RT plan not found",
        // Media Creation Management.
        0xA510 => "refused: an initiate media creation action has already been received",
        0xC201 => "media creation request already completed",
        0xC202 => "media creation request already in progress and cannot be interrupted",
        0xC203 => "cancellation denied for unspecified reason",
        // Unified Procedure Step.
        0xB300 => "the UPS was created with modifications",
        0xB301 => "deletion lock not granted",
        0xB304 => "the UPS is already in the requested state of CANCELED",
        0xB305 => "coerced invalid values to valid values",
        0xB306 => "the UPS is already in the requested state of COMPLETED",
        0xC300 => "the UPS may no longer be updated",
        0xC301 => "the correct transaction UID was not provided",
        0xC302 => "the UPS is already IN PROGRESS",
        0xC303 => "the UPS may only become SCHEDULED via N-CREATE",
        0xC304 => "the UPS has not met final state requirements for the requested state change",
        0xC307 => "specified SOP instance UID does not exist or is not a UPS managed by this SCP",
        0xC308 => "receiving AE title is unknown to this SCP",
        0xC309 => "the provided value of UPS state was not SCHEDULED",
        0xC310 => "the UPS is not yet in the IN PROGRESS state",
        0xC311 => "the UPS is already COMPLETED",
        0xC312 => "the performer cannot be contacted",
        0xC313 => "performer chooses not to cancel",
        0xC314 => "specified action is not appropriate for specified instance",
        0xC315 => "SCP does not support event reports",
        // Print Management.
        0xB600 => "memory allocation not supported",
        0xB601 => "film session printing (collation) is not supported",
        0xB602 => "film session has no image box instances (empty page)",
        0xB603 => "film box has no image box instances (empty page)",
        0xB604 => "image larger than image box, demagnified",
        0xB605 => "requested min or max density outside the printer's range",
        0xB609 => "image larger than image box, cropped to fit",
        0xB60A => "image or combined print image larger than image box, decimated to fit",
        0xC600 => "film session has no film box instances",
        0xC601 => "unable to create print job instance: print queue is full",
        0xC602 => "unable to create print job instance: print queue is full",
        0xC603 => "image size is larger than image box size",
        0xC605 => "insufficient memory in printer to store the image",
        0xC613 => "combined print image size is larger than the image box size",
        0xC616 => {
            "an existing film box has not been printed and film session N-ACTION is not supported"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE_RSP: u16 = 0x8001;
    const FIND_RSP: u16 = 0x8020;
    const MOVE_RSP: u16 = 0x8021;
    const GET_RSP: u16 = 0x8010;
    const ECHO_RSP: u16 = 0x8030;

    #[test]
    fn code_is_four_hex_digits() {
        for code in [0u16, 0x1, 0xA700, 0xC000, 0xFF01, 0xFFFF, 0x0ABC, 0x1234] {
            assert_eq!(hex4(code), format!("{code:04X}"));
        }
    }

    #[test]
    fn class_rules() {
        for (code, class) in [
            (0x0000, StatusClass::Success),
            (0xFE00, StatusClass::Cancel),
            (0xFF00, StatusClass::Pending),
            (0xFF01, StatusClass::Pending),
            (0x0001, StatusClass::Warning),
            (0x0107, StatusClass::Warning),
            (0x0116, StatusClass::Warning),
            (0xB000, StatusClass::Warning),
            (0xBFFF, StatusClass::Warning),
            (0xA700, StatusClass::Failure),
            (0xC000, StatusClass::Failure),
            (0x0110, StatusClass::Failure),
            (0x1234, StatusClass::Failure),
            (0xFFFF, StatusClass::Failure),
        ] {
            assert_eq!(StatusClass::of(code), class, "{code:04X}");
            assert_eq!(classify(code, STORE_RSP).class, class, "{code:04X}");
        }
        assert!(!StatusClass::Pending.is_final());
        assert!(StatusClass::Warning.is_final());
    }

    #[test]
    fn meaning_depends_on_service() {
        assert_eq!(
            classify(0xB000, STORE_RSP).meaning,
            "coercion of data elements"
        );
        assert_eq!(
            classify(0xB000, MOVE_RSP).meaning,
            "sub-operations complete, one or more failures or warnings"
        );
        assert_eq!(
            classify(0xB000, GET_RSP).meaning,
            "sub-operations complete, one or more failures or warnings"
        );
        assert_eq!(
            classify(0xA900, STORE_RSP).meaning,
            "data set does not match SOP class"
        );
        assert_eq!(
            classify(0xA9FF, STORE_RSP).meaning,
            "data set does not match SOP class"
        );
        assert_eq!(
            classify(0xA900, FIND_RSP).meaning,
            "identifier does not match SOP class"
        );
        assert_eq!(classify(0xC123, STORE_RSP).meaning, "cannot understand");
        assert_eq!(classify(0xC123, FIND_RSP).meaning, "unable to process");
        assert_eq!(
            classify(0xA801, MOVE_RSP).meaning,
            "move destination unknown"
        );
        // A801 is a C-MOVE code only.
        assert!(!classify(0xA801, GET_RSP).known);
        assert_eq!(classify(0xA7FE, STORE_RSP).meaning, "out of resources");
        assert_eq!(
            classify(0xFF01, FIND_RSP).meaning,
            "matches are continuing, one or more optional keys were not supported"
        );
        assert_eq!(
            classify(0xFE00, MOVE_RSP).meaning,
            "sub-operations terminated due to cancel"
        );
        assert_eq!(classify(0xFE00, ECHO_RSP).meaning, "cancel");
        // Request fields work as well.
        assert_eq!(
            classify(0xB000, 0x0021).meaning,
            classify(0xB000, MOVE_RSP).meaning
        );
    }

    #[test]
    fn general_statuses() {
        for code in [
            0x0105u16, 0x0106, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0117, 0x0118,
            0x0119, 0x0120, 0x0121, 0x0122, 0x0123, 0x0124, 0x0210, 0x0211, 0x0212, 0x0213,
        ] {
            let s = classify(code, 0x8120);
            assert!(s.known, "{code:04X}");
            assert_eq!(s.class, StatusClass::Failure);
            assert_eq!(classify(code, STORE_RSP).meaning, s.meaning);
        }
        assert_eq!(
            classify(0x0122, ECHO_RSP).meaning,
            "refused: SOP class not supported"
        );
        assert_eq!(
            classify(0x0111, STORE_RSP).meaning,
            "duplicate SOP instance"
        );
    }

    #[test]
    fn normalized_services() {
        // N-ACTION / N-EVENT-REPORT of Storage Commitment use general codes.
        assert_eq!(classify(0x0112, 0x8130).meaning, "no such SOP instance");
        assert_eq!(
            classify(0xC301, 0x8130).meaning,
            "the correct transaction UID was not provided"
        );
        assert_eq!(classify(0xB602, 0x8140).class, StatusClass::Warning);
        assert_eq!(classify(0xC600, 0x8130).class, StatusClass::Failure);
        assert!(!classify(0xC999, 0x8130).known);
        // UPS codes make no sense for C-STORE.
        assert_eq!(classify(0xC301, STORE_RSP).meaning, "cannot understand");
    }

    #[test]
    fn unknown_codes() {
        let s = classify(0x1234, ECHO_RSP);
        assert!(!s.known);
        assert_eq!(s.meaning, UNKNOWN);
        assert_eq!(s.class, StatusClass::Failure);
        assert!(!classify(0xA700, ECHO_RSP).known);
        assert!(classify(0xA700, STORE_RSP).known);
    }

    #[test]
    fn display_and_serde() {
        assert_eq!(
            classify(0xA700, STORE_RSP).to_string(),
            "A700 (failure: out of resources)"
        );
        assert_eq!(classify(0, ECHO_RSP).to_string(), "0000 (success)");
        assert_eq!(classify(0xFE00, ECHO_RSP).to_string(), "FE00 (cancel)");
        assert_eq!(
            classify(0xB000, STORE_RSP).to_string(),
            "B000 (warning: coercion of data elements)"
        );
        assert_eq!(StatusClass::Cancel.as_str(), "cancel");
        let json = serde_json::to_value(classify(0xFF00, FIND_RSP)).unwrap_or_default();
        assert_eq!(json["class"], "pending");
        assert_eq!(json["code"], "FF00");
        assert_eq!(json["value"], 0xFF00);
    }
}
