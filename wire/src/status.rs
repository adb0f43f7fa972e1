//! DIMSE status codes: their class (PS3.7 Annex C) and meaning, including the
//! service-specific statuses of PS3.4.

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

/// A status with its class and meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The code as four hex digits, e.g. "A700".
    pub code: String,
    pub class: StatusClass,
    pub meaning: &'static str,
}

/// Classifies `code` as returned in a response with `command_field`.
pub fn classify(code: u16, command_field: u16) -> Status {
    let _ = command_field;
    let class = match code {
        0x0000 => StatusClass::Success,
        0xFE00 => StatusClass::Cancel,
        0xFF00 | 0xFF01 => StatusClass::Pending,
        0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusClass::Warning,
        _ => StatusClass::Failure,
    };
    Status {
        code: format!("{code:04X}"),
        class,
        meaning: "",
    }
}
