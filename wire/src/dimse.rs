//! DIMSE command sets (PS3.7 9.3 and 10.3): always Implicit VR Little Endian, group 0000.
//! Every element length is checked against the bytes present before anything is decoded.
//!
//! The decoder is lenient like the rest of the engine: unknown or retired elements, odd
//! lengths, odd padding, a wrong group length and missing required elements do not stop it;
//! each becomes a [`CommandNote`] (offsets relative to the start of the command set) that
//! the engine turns into findings. Only what makes the set unreadable is an error: an
//! element running past the end, or no Command Field.

use serde::Serialize;

use crate::finding::{Finding, FindingCode, Severity};
use crate::status::{Status, StatusClass, classify};
use crate::uid;

/// Command Field values (PS3.7 E.1).
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
    pub const N_EVENT_REPORT_RSP: u16 = 0x8100;
    pub const N_GET_RQ: u16 = 0x0110;
    pub const N_GET_RSP: u16 = 0x8110;
    pub const N_SET_RQ: u16 = 0x0120;
    pub const N_SET_RSP: u16 = 0x8120;
    pub const N_ACTION_RQ: u16 = 0x0130;
    pub const N_ACTION_RSP: u16 = 0x8130;
    pub const N_CREATE_RQ: u16 = 0x0140;
    pub const N_CREATE_RSP: u16 = 0x8140;
    pub const N_DELETE_RQ: u16 = 0x0150;
    pub const N_DELETE_RSP: u16 = 0x8150;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// (0000,0800) value meaning "no data set follows" (PS3.7 E.1). Any other value means one
/// does.
pub const NO_DATA_SET: u16 = 0x0101;
/// What [`encode_command`] writes when a data set follows (as DCMTK and pynetdicom do).
pub const DATA_SET_PRESENT: u16 = 0x0001;

/// The name of a Command Field, e.g. "C-STORE-RQ", or "UNKNOWN".
pub fn command_name(field: u16) -> &'static str {
    match field {
        field::C_STORE_RQ => "C-STORE-RQ",
        field::C_STORE_RSP => "C-STORE-RSP",
        field::C_GET_RQ => "C-GET-RQ",
        field::C_GET_RSP => "C-GET-RSP",
        field::C_FIND_RQ => "C-FIND-RQ",
        field::C_FIND_RSP => "C-FIND-RSP",
        field::C_MOVE_RQ => "C-MOVE-RQ",
        field::C_MOVE_RSP => "C-MOVE-RSP",
        field::C_ECHO_RQ => "C-ECHO-RQ",
        field::C_ECHO_RSP => "C-ECHO-RSP",
        field::N_EVENT_REPORT_RQ => "N-EVENT-REPORT-RQ",
        field::N_EVENT_REPORT_RSP => "N-EVENT-REPORT-RSP",
        field::N_GET_RQ => "N-GET-RQ",
        field::N_GET_RSP => "N-GET-RSP",
        field::N_SET_RQ => "N-SET-RQ",
        field::N_SET_RSP => "N-SET-RSP",
        field::N_ACTION_RQ => "N-ACTION-RQ",
        field::N_ACTION_RSP => "N-ACTION-RSP",
        field::N_CREATE_RQ => "N-CREATE-RQ",
        field::N_CREATE_RSP => "N-CREATE-RSP",
        field::N_DELETE_RQ => "N-DELETE-RQ",
        field::N_DELETE_RSP => "N-DELETE-RSP",
        field::C_CANCEL_RQ => "C-CANCEL-RQ",
        _ => "UNKNOWN",
    }
}

/// The service of a Command Field without the RQ/RSP suffix, e.g. "C-STORE", or "UNKNOWN".
pub fn service_name(field: u16) -> &'static str {
    match command_name(field) {
        "UNKNOWN" => "UNKNOWN",
        name => name
            .strip_suffix("-RQ")
            .or_else(|| name.strip_suffix("-RSP"))
            .unwrap_or(name),
    }
}

/// Sub-operation counters of C-MOVE, C-GET (and C-FIND extensions) responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SubOperations {
    pub remaining: Option<u16>,
    pub completed: Option<u16>,
    pub failed: Option<u16>,
    pub warning: Option<u16>,
}

/// A decoded command set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Command {
    /// (0000,0100) Command Field.
    pub command_field: u16,
    /// Its name, e.g. "C-STORE-RQ", or "UNKNOWN".
    pub command: &'static str,
    pub message_id: Option<u16>,
    pub responded_to: Option<u16>,
    pub affected_sop_class: Option<String>,
    pub requested_sop_class: Option<String>,
    pub affected_sop_instance: Option<String>,
    pub requested_sop_instance: Option<String>,
    pub priority: Option<u16>,
    /// (0000,0800) says a data set follows.
    pub has_dataset: bool,
    pub status: Option<Status>,
    pub error_comment: Option<String>,
    pub error_id: Option<u16>,
    /// (0000,0901) Offending Element, as "(gggg,eeee)".
    pub offending_elements: Vec<String>,
    pub sub_operations: Option<SubOperations>,
    pub move_destination: Option<String>,
    pub move_originator_ae: Option<String>,
    pub move_originator_message_id: Option<u16>,
    pub event_type_id: Option<u16>,
    pub action_type_id: Option<u16>,
    /// (0000,0000) Command Group Length as declared.
    pub group_length: Option<u32>,
    /// (0000,0800) Command Data Set Type as sent (0x0101: none; devices differ on the rest).
    pub data_set_type: Option<u16>,
    /// (0000,1005) Attribute Identifier List (N-GET), as "(gggg,eeee)".
    pub attribute_identifiers: Vec<String>,
    /// Oddities met while decoding; empty for a clean command set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<CommandNote>,
}

impl Command {
    /// A command with just its Command Field (and name) set: the start of a command to
    /// encode.
    pub fn new(command_field: u16) -> Command {
        Command {
            command_field,
            command: command_name(command_field),
            ..Command::default()
        }
    }

    /// Requests have bit 0x8000 of the command field clear (C-CANCEL-RQ included).
    pub fn is_request(&self) -> bool {
        self.command_field & 0x8000 == 0
    }

    /// Responses have bit 0x8000 of the command field set.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The service, e.g. "C-STORE" for both C-STORE-RQ and C-STORE-RSP.
    pub fn service(&self) -> &'static str {
        service_name(self.command_field)
    }

    /// The SOP class the message is about: affected (C- services, N-CREATE,
    /// N-EVENT-REPORT) or requested (N-GET, N-SET, N-ACTION, N-DELETE).
    pub fn sop_class(&self) -> Option<&str> {
        self.affected_sop_class
            .as_deref()
            .or(self.requested_sop_class.as_deref())
    }

    /// The SOP instance the message is about, affected or requested.
    pub fn sop_instance(&self) -> Option<&str> {
        self.affected_sop_instance
            .as_deref()
            .or(self.requested_sop_instance.as_deref())
    }

    /// The message ID that pairs a request with its responses: Message ID for requests,
    /// Message ID Being Responded To for responses and C-CANCEL-RQ.
    pub fn pairing_id(&self) -> Option<u16> {
        if self.is_request() && self.command_field != field::C_CANCEL_RQ {
            self.message_id
        } else {
            self.responded_to
        }
    }

    /// The class of the status, if the command carries one.
    pub fn status_class(&self) -> Option<StatusClass> {
        self.status.as_ref().map(|s| s.class)
    }
}

/// An oddity in a command set that did not stop decoding. Offsets are from the start of
/// the command set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum CommandNote {
    /// No (0000,0000) Command Group Length (required by PS3.7 E.1).
    NoGroupLength,
    /// The Command Group Length disagrees with the bytes after it.
    GroupLengthMismatch { declared: u32, actual: u64 },
    /// An element PS3.7 does not define for command sets (retired ones included, or a
    /// group other than 0000); skipped.
    UnknownElement { tag: String, offset: usize },
    /// Elements not in ascending tag order (PS3.5 7.1).
    OutOfOrder { tag: String, offset: usize },
    /// The same element twice; the last one wins.
    Duplicate { tag: String, offset: usize },
    /// A value length that is odd or does not fit the VR (US not 2, UL not 4, AT not a
    /// multiple of 4).
    BadLength {
        tag: String,
        offset: usize,
        length: u32,
    },
    /// A UID padded with spaces or with more than one NUL.
    UidPadding {
        tag: String,
        offset: usize,
        value: String,
    },
    /// A UID that is not digits and dots, has an empty or leading-zero component, or is
    /// longer than 64.
    InvalidUid {
        tag: String,
        offset: usize,
        value: String,
    },
    /// An element PS3.7 requires for this command is absent.
    Missing { tag: String },
}

impl CommandNote {
    /// The protocol finding this note amounts to. The message gives offsets relative to the
    /// command set; the engine knows where that started.
    pub fn to_finding(&self) -> Finding {
        let (code, severity) = match self {
            CommandNote::NoGroupLength => (FindingCode::MalformedCommand, Severity::Warning),
            CommandNote::GroupLengthMismatch { .. } | CommandNote::BadLength { .. } => {
                (FindingCode::LengthMismatch, Severity::Warning)
            }
            CommandNote::UnknownElement { .. } => (FindingCode::MalformedCommand, Severity::Info),
            CommandNote::OutOfOrder { .. } | CommandNote::Duplicate { .. } => {
                (FindingCode::MalformedCommand, Severity::Warning)
            }
            CommandNote::UidPadding { .. } => (FindingCode::UidPadding, Severity::Info),
            CommandNote::InvalidUid { .. } => (FindingCode::InvalidUid, Severity::Warning),
            CommandNote::Missing { .. } => (FindingCode::MalformedCommand, Severity::Error),
        };
        Finding::new(code, severity, self.to_string())
    }
}

impl std::fmt::Display for CommandNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandNote::NoGroupLength => {
                f.write_str("command set without Command Group Length (0000,0000)")
            }
            CommandNote::GroupLengthMismatch { declared, actual } => write!(
                f,
                "Command Group Length (0000,0000) declares {declared} bytes, {actual} follow"
            ),
            CommandNote::UnknownElement { tag, offset } => {
                write!(
                    f,
                    "unknown command element {tag} at offset {offset} skipped"
                )
            }
            CommandNote::OutOfOrder { tag, offset } => {
                write!(
                    f,
                    "command element {tag} at offset {offset} out of tag order"
                )
            }
            CommandNote::Duplicate { tag, offset } => {
                write!(f, "command element {tag} repeated at offset {offset}")
            }
            CommandNote::BadLength {
                tag,
                offset,
                length,
            } => write!(
                f,
                "command element {tag} at offset {offset} has a bad length {length}"
            ),
            CommandNote::UidPadding { tag, offset, value } => write!(
                f,
                "UID {value:?} in {tag} at offset {offset} padded with spaces or several NULs"
            ),
            CommandNote::InvalidUid { tag, offset, value } => {
                write!(f, "invalid UID {value:?} in {tag} at offset {offset}")
            }
            CommandNote::Missing { tag } => write!(f, "required command element {tag} missing"),
        }
    }
}

/// Why a command set could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error(
        "element ({group:04X},{element:04X}) at offset {offset} declares {length} bytes, {available} present"
    )]
    Truncated {
        group: u16,
        element: u16,
        offset: usize,
        length: u32,
        available: usize,
    },
    #[error("element header at offset {offset} cut short: {available} of 8 bytes present")]
    TruncatedHeader { offset: usize, available: usize },
    #[error("no Command Field (0000,0100)")]
    NoCommandField,
    #[error("{0}")]
    Other(String),
}

/// "(gggg,eeee)", the form tags take in notes, findings and [`Command`].
fn tag_str(group: u16, element: u16) -> String {
    format!("({group:04X},{element:04X})")
}

/// Parses "(gggg,eeee)", "gggg,eeee" or "ggggeeee" back into a tag.
fn parse_tag(s: &str) -> Option<(u16, u16)> {
    let s = s.trim().trim_start_matches('(').trim_end_matches(')');
    let (g, e) = match s.split_once(',') {
        Some(pair) => pair,
        None if s.len() == 8 => (s.get(..4)?, s.get(4..)?),
        None => return None,
    };
    Some((
        u16::from_str_radix(g.trim(), 16).ok()?,
        u16::from_str_radix(e.trim(), 16).ok()?,
    ))
}

/// The command elements of PS3.7 E.1 (retired ones excluded), as bits for the duplicate
/// and missing-element checks.
fn known_bit(element: u16) -> Option<u32> {
    const KNOWN: [u16; 24] = [
        0x0000, 0x0002, 0x0003, 0x0100, 0x0110, 0x0120, 0x0600, 0x0700, 0x0800, 0x0900, 0x0901,
        0x0902, 0x0903, 0x1000, 0x1001, 0x1002, 0x1005, 0x1008, 0x1020, 0x1021, 0x1022, 0x1023,
        0x1030, 0x1031,
    ];
    let i = KNOWN.iter().position(|&e| e == element)?;
    Some(1u32 << i)
}

/// Per-element decoding context: where we are, for the notes.
struct Elem<'a> {
    tag: (u16, u16),
    offset: usize,
    value: &'a [u8],
}

impl Elem<'_> {
    fn tag(&self) -> String {
        tag_str(self.tag.0, self.tag.1)
    }

    fn length(&self) -> u32 {
        u32::try_from(self.value.len()).unwrap_or(u32::MAX)
    }

    fn bad_length(&self, notes: &mut Vec<CommandNote>) {
        notes.push(CommandNote::BadLength {
            tag: self.tag(),
            offset: self.offset,
            length: self.length(),
        });
    }

    /// US: the first two bytes; a length other than 2 is noted but the value still read
    /// when there is one.
    fn us(&self, notes: &mut Vec<CommandNote>) -> Option<u16> {
        if self.value.len() != 2 {
            self.bad_length(notes);
        }
        le16(self.value, 0)
    }

    fn ul(&self, notes: &mut Vec<CommandNote>) -> Option<u32> {
        if self.value.len() != 4 {
            self.bad_length(notes);
        }
        le32(self.value, 0)
    }

    /// UI: trimmed of NUL/space padding; odd padding and bad syntax are noted.
    fn ui(&self, notes: &mut Vec<CommandNote>) -> String {
        if self.value.len() % 2 != 0 {
            self.bad_length(notes);
        }
        let w = uid::from_wire(self.value);
        if w.space_padded || self.value.len().saturating_sub(w.uid.len()) > 1 {
            notes.push(CommandNote::UidPadding {
                tag: self.tag(),
                offset: self.offset,
                value: w.uid.clone(),
            });
        }
        if !w.valid {
            notes.push(CommandNote::InvalidUid {
                tag: self.tag(),
                offset: self.offset,
                value: w.uid.clone(),
            });
        }
        w.uid
    }

    /// AE, LO: leading and trailing spaces are padding (PS3.5 6.2); NULs too, leniently.
    fn text(&self, notes: &mut Vec<CommandNote>) -> String {
        if self.value.len() % 2 != 0 {
            self.bad_length(notes);
        }
        String::from_utf8_lossy(self.value)
            .trim_matches(|c| c == ' ' || c == '\0')
            .to_owned()
    }

    /// AT, VM 1-n: group then element, each little endian.
    fn tags(&self, notes: &mut Vec<CommandNote>) -> Vec<String> {
        if self.value.len() % 4 != 0 {
            self.bad_length(notes);
        }
        self.value
            .chunks_exact(4)
            .filter_map(|c| Some(tag_str(le16(c, 0)?, le16(c, 2)?)))
            .collect()
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Decodes a complete command set.
pub fn decode_command(bytes: &[u8]) -> Result<Command, CommandError> {
    let mut cmd = Command::default();
    let mut notes = Vec::new();
    let mut command_field = None;
    let mut status_value = None;
    let mut group_length_check: Option<(u32, usize)> = None;
    let mut seen: u32 = 0;
    let mut previous: Option<(u16, u16)> = None;

    let mut pos = 0usize;
    while pos < bytes.len() {
        let available = bytes.len() - pos;
        let (Some(group), Some(element), Some(length)) =
            (le16(bytes, pos), le16(bytes, pos + 2), le32(bytes, pos + 4))
        else {
            return Err(CommandError::TruncatedHeader {
                offset: pos,
                available,
            });
        };
        let start = pos + 8;
        let value = usize::try_from(length)
            .ok()
            .and_then(|len| bytes.get(start..start.checked_add(len)?))
            .ok_or(CommandError::Truncated {
                group,
                element,
                offset: pos,
                length,
                available: bytes.len().saturating_sub(start),
            })?;
        let elem = Elem {
            tag: (group, element),
            offset: pos,
            value,
        };
        pos = start + value.len();

        if let Some(prev) = previous {
            if (group, element) < prev {
                notes.push(CommandNote::OutOfOrder {
                    tag: elem.tag(),
                    offset: elem.offset,
                });
            }
        }
        previous = Some((group, element));

        let bit = if group == 0 { known_bit(element) } else { None };
        let Some(bit) = bit else {
            notes.push(CommandNote::UnknownElement {
                tag: elem.tag(),
                offset: elem.offset,
            });
            continue;
        };
        if seen & bit != 0 {
            notes.push(CommandNote::Duplicate {
                tag: elem.tag(),
                offset: elem.offset,
            });
        }
        seen |= bit;

        let n = &mut notes;
        match element {
            0x0000 => {
                cmd.group_length = elem.ul(n);
                if let Some(declared) = cmd.group_length {
                    group_length_check = Some((declared, pos));
                }
            }
            0x0002 => cmd.affected_sop_class = Some(elem.ui(n)),
            0x0003 => cmd.requested_sop_class = Some(elem.ui(n)),
            0x0100 => command_field = elem.us(n),
            0x0110 => cmd.message_id = elem.us(n),
            0x0120 => cmd.responded_to = elem.us(n),
            0x0600 => cmd.move_destination = Some(elem.text(n)),
            0x0700 => cmd.priority = elem.us(n),
            0x0800 => cmd.data_set_type = elem.us(n),
            0x0900 => status_value = elem.us(n),
            0x0901 => cmd.offending_elements = elem.tags(n),
            0x0902 => cmd.error_comment = Some(elem.text(n)),
            0x0903 => cmd.error_id = elem.us(n),
            0x1000 => cmd.affected_sop_instance = Some(elem.ui(n)),
            0x1001 => cmd.requested_sop_instance = Some(elem.ui(n)),
            0x1002 => cmd.event_type_id = elem.us(n),
            0x1005 => cmd.attribute_identifiers = elem.tags(n),
            0x1008 => cmd.action_type_id = elem.us(n),
            0x1020 => sub_ops(&mut cmd).remaining = elem.us(n),
            0x1021 => sub_ops(&mut cmd).completed = elem.us(n),
            0x1022 => sub_ops(&mut cmd).failed = elem.us(n),
            0x1023 => sub_ops(&mut cmd).warning = elem.us(n),
            0x1030 => cmd.move_originator_ae = Some(elem.text(n)),
            0x1031 => cmd.move_originator_message_id = elem.us(n),
            _ => {}
        }
    }

    let command_field = command_field.ok_or(CommandError::NoCommandField)?;
    cmd.command_field = command_field;
    cmd.command = command_name(command_field);
    cmd.has_dataset = cmd.data_set_type.is_some_and(|t| t != NO_DATA_SET);
    cmd.status = status_value.map(|code| classify(code, command_field));

    match group_length_check {
        None => notes.insert(0, CommandNote::NoGroupLength),
        Some((declared, end)) => {
            let actual = u64::try_from(bytes.len().saturating_sub(end)).unwrap_or(u64::MAX);
            if u64::from(declared) != actual {
                notes.insert(0, CommandNote::GroupLengthMismatch { declared, actual });
            }
        }
    }
    for element in required(command_field) {
        if known_bit(*element).is_some_and(|bit| seen & bit == 0) {
            notes.push(CommandNote::Missing {
                tag: tag_str(0, *element),
            });
        }
    }
    cmd.notes = notes;
    Ok(cmd)
}

fn sub_ops(cmd: &mut Command) -> &mut SubOperations {
    cmd.sub_operations
        .get_or_insert_with(SubOperations::default)
}

/// Elements PS3.7 9.3/10.3 make mandatory (M) for a command, Command Field and Group
/// Length aside. Conditional (C) and user-option (U) ones are not checked here.
fn required(command_field: u16) -> &'static [u16] {
    match command_field {
        field::C_STORE_RQ => &[0x0002, 0x0110, 0x0700, 0x0800, 0x1000],
        field::C_FIND_RQ | field::C_GET_RQ => &[0x0002, 0x0110, 0x0700, 0x0800],
        field::C_MOVE_RQ => &[0x0002, 0x0110, 0x0600, 0x0700, 0x0800],
        field::C_ECHO_RQ => &[0x0002, 0x0110, 0x0800],
        field::C_CANCEL_RQ => &[0x0120, 0x0800],
        field::N_EVENT_REPORT_RQ => &[0x0002, 0x0110, 0x0800, 0x1000, 0x1002],
        field::N_GET_RQ | field::N_SET_RQ | field::N_DELETE_RQ => &[0x0003, 0x0110, 0x0800, 0x1001],
        field::N_ACTION_RQ => &[0x0003, 0x0110, 0x0800, 0x1001, 0x1008],
        field::N_CREATE_RQ => &[0x0002, 0x0110, 0x0800],
        f if f & 0x8000 != 0 => &[0x0120, 0x0800, 0x0900],
        _ => &[],
    }
}

/// Encodes a command set: Implicit VR Little Endian, ascending tags, a correct Command
/// Group Length, UIDs NUL-padded and text space-padded to even length. Fields that are
/// `None` (or empty lists) are left out; `command`, `group_length` and `notes` are ignored.
/// (0000,0800) is `data_set_type` when it agrees with `has_dataset`, otherwise 0x0101 or
/// [`DATA_SET_PRESENT`].
pub fn encode_command(cmd: &Command) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    let uid = |b: &mut Vec<u8>, el: u16, v: &Option<String>| {
        if let Some(v) = v {
            put(b, el, v.as_bytes(), 0);
        }
    };
    let text = |b: &mut Vec<u8>, el: u16, v: &Option<String>| {
        if let Some(v) = v {
            put(b, el, v.as_bytes(), b' ');
        }
    };
    let us = |b: &mut Vec<u8>, el: u16, v: Option<u16>| {
        if let Some(v) = v {
            put(b, el, &v.to_le_bytes(), 0);
        }
    };
    let at = |b: &mut Vec<u8>, el: u16, v: &[String]| {
        let value: Vec<u8> = v
            .iter()
            .filter_map(|t| parse_tag(t))
            .flat_map(|(g, e)| g.to_le_bytes().into_iter().chain(e.to_le_bytes()))
            .collect();
        if !value.is_empty() {
            put(b, el, &value, 0);
        }
    };
    let data_set_type = match (cmd.has_dataset, cmd.data_set_type) {
        (false, _) => NO_DATA_SET,
        (true, Some(t)) if t != NO_DATA_SET => t,
        (true, _) => DATA_SET_PRESENT,
    };
    let sub = cmd.sub_operations.unwrap_or_default();

    uid(&mut body, 0x0002, &cmd.affected_sop_class);
    uid(&mut body, 0x0003, &cmd.requested_sop_class);
    us(&mut body, 0x0100, Some(cmd.command_field));
    us(&mut body, 0x0110, cmd.message_id);
    us(&mut body, 0x0120, cmd.responded_to);
    text(&mut body, 0x0600, &cmd.move_destination);
    us(&mut body, 0x0700, cmd.priority);
    us(&mut body, 0x0800, Some(data_set_type));
    us(&mut body, 0x0900, cmd.status.as_ref().map(|s| s.value));
    at(&mut body, 0x0901, &cmd.offending_elements);
    text(&mut body, 0x0902, &cmd.error_comment);
    us(&mut body, 0x0903, cmd.error_id);
    uid(&mut body, 0x1000, &cmd.affected_sop_instance);
    uid(&mut body, 0x1001, &cmd.requested_sop_instance);
    us(&mut body, 0x1002, cmd.event_type_id);
    at(&mut body, 0x1005, &cmd.attribute_identifiers);
    us(&mut body, 0x1008, cmd.action_type_id);
    us(&mut body, 0x1020, sub.remaining);
    us(&mut body, 0x1021, sub.completed);
    us(&mut body, 0x1022, sub.failed);
    us(&mut body, 0x1023, sub.warning);
    text(&mut body, 0x1030, &cmd.move_originator_ae);
    us(&mut body, 0x1031, cmd.move_originator_message_id);

    let mut out = Vec::with_capacity(body.len() + 12);
    let group_length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    put(&mut out, 0x0000, &group_length.to_le_bytes(), 0);
    out.extend_from_slice(&body);
    out
}

/// One group 0000 element, the value padded to even length with `pad`. A value too long
/// for a 32-bit length (not a command set any more) is left out.
fn put(out: &mut Vec<u8>, element: u16, value: &[u8], pad: u8) {
    let padded = value.len() + value.len() % 2;
    let Ok(length) = u32::try_from(padded) else {
        return;
    };
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(value);
    if value.len() % 2 != 0 {
        out.push(pad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds one raw element, for hand-made (possibly broken) command sets.
    fn el(group: u16, element: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&group.to_le_bytes());
        v.extend_from_slice(&element.to_le_bytes());
        v.extend_from_slice(&u32::try_from(value.len()).unwrap_or(0).to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    fn with_group_length(body: &[u8]) -> Vec<u8> {
        let mut v = el(0, 0, &u32::try_from(body.len()).unwrap_or(0).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// A C-ECHO-RQ as pynetdicom sends it.
    fn echo_rq() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(el(0, 0x0002, b"1.2.840.10008.1.1\0"));
        body.extend(el(0, 0x0100, &0x0030u16.to_le_bytes()));
        body.extend(el(0, 0x0110, &7u16.to_le_bytes()));
        body.extend(el(0, 0x0800, &0x0101u16.to_le_bytes()));
        with_group_length(&body)
    }

    #[test]
    fn decodes_echo_rq() {
        let cmd = decode_command(&echo_rq()).unwrap_or_default();
        assert_eq!(cmd.command, "C-ECHO-RQ");
        assert_eq!(cmd.service(), "C-ECHO");
        assert!(cmd.is_request() && !cmd.is_response());
        assert_eq!(cmd.message_id, Some(7));
        assert_eq!(cmd.pairing_id(), Some(7));
        assert_eq!(cmd.sop_class(), Some("1.2.840.10008.1.1"));
        assert!(!cmd.has_dataset);
        assert_eq!(cmd.notes, vec![]);
    }

    #[test]
    fn decodes_move_rsp() {
        let mut body = Vec::new();
        body.extend(el(0, 0x0002, b"1.2.840.10008.5.1.4.1.2.2.2\0"));
        body.extend(el(0, 0x0100, &0x8021u16.to_le_bytes()));
        body.extend(el(0, 0x0120, &3u16.to_le_bytes()));
        body.extend(el(0, 0x0800, &0x0101u16.to_le_bytes()));
        body.extend(el(0, 0x0900, &0xB000u16.to_le_bytes()));
        body.extend(el(
            0,
            0x0901,
            &[0x08, 0x00, 0x18, 0x00, 0x10, 0x00, 0x20, 0x00],
        ));
        body.extend(el(0, 0x0902, b" two failed "));
        body.extend(el(0, 0x1020, &0u16.to_le_bytes()));
        body.extend(el(0, 0x1021, &8u16.to_le_bytes()));
        body.extend(el(0, 0x1022, &2u16.to_le_bytes()));
        body.extend(el(0, 0x1023, &0u16.to_le_bytes()));
        let cmd = decode_command(&with_group_length(&body)).unwrap_or_default();
        assert_eq!(cmd.command, "C-MOVE-RSP");
        assert!(cmd.is_response());
        assert_eq!(cmd.pairing_id(), Some(3));
        let status = cmd.status.clone().unwrap_or_else(|| classify(0xFFFF, 0));
        assert_eq!(status.class, StatusClass::Warning);
        assert_eq!(
            status.meaning,
            "sub-operations complete, one or more failures or warnings"
        );
        assert_eq!(cmd.status_class(), Some(StatusClass::Warning));
        assert_eq!(cmd.offending_elements, ["(0008,0018)", "(0010,0020)"]);
        assert_eq!(cmd.error_comment.as_deref(), Some("two failed"));
        assert_eq!(
            cmd.sub_operations,
            Some(SubOperations {
                remaining: Some(0),
                completed: Some(8),
                failed: Some(2),
                warning: Some(0),
            })
        );
        assert_eq!(cmd.notes, vec![]);
    }

    #[test]
    fn store_rq_with_move_originator() {
        let mut c = Command::new(field::C_STORE_RQ);
        c.message_id = Some(12);
        c.affected_sop_class = Some("1.2.840.10008.5.1.4.1.1.2".into());
        c.affected_sop_instance = Some("1.2.3.4.5".into());
        c.priority = Some(0);
        c.has_dataset = true;
        c.move_originator_ae = Some("MOVESCU".into());
        c.move_originator_message_id = Some(3);
        let bytes = encode_command(&c);
        // Group length is right and values are even.
        assert_eq!(
            le32(&bytes, 8).and_then(|l| usize::try_from(l).ok()),
            Some(bytes.len() - 12)
        );
        let d = decode_command(&bytes).unwrap_or_default();
        assert_eq!(d.notes, vec![]);
        assert!(d.has_dataset);
        assert_eq!(d.data_set_type, Some(DATA_SET_PRESENT));
        assert_eq!(d.move_originator_ae.as_deref(), Some("MOVESCU"));
        assert_eq!(d.sop_instance(), Some("1.2.3.4.5"));
        assert_eq!(d.group_length, le32(&bytes, 8));
    }

    #[test]
    fn n_services() {
        let mut c = Command::new(field::N_ACTION_RQ);
        c.message_id = Some(1);
        c.requested_sop_class = Some("1.2.840.10008.1.20.1".into());
        c.requested_sop_instance = Some("1.2.840.10008.1.20.1.1".into());
        c.action_type_id = Some(1);
        c.has_dataset = true;
        let d = decode_command(&encode_command(&c)).unwrap_or_default();
        assert_eq!(d.service(), "N-ACTION");
        assert_eq!(d.sop_class(), Some("1.2.840.10008.1.20.1"));
        assert_eq!(d.sop_instance(), Some("1.2.840.10008.1.20.1.1"));
        assert_eq!(d.notes, vec![]);

        let mut g = Command::new(field::N_GET_RQ);
        g.message_id = Some(2);
        g.requested_sop_class = Some("1.2.840.10008.5.1.1.16".into());
        g.requested_sop_instance = Some("1.2.840.10008.5.1.1.17".into());
        g.attribute_identifiers = vec!["(2110,0010)".into(), "(2110,0020)".into()];
        let d = decode_command(&encode_command(&g)).unwrap_or_default();
        assert_eq!(d.attribute_identifiers, g.attribute_identifiers);
        assert_eq!(d.notes, vec![]);
    }

    #[test]
    fn names() {
        for (f, n, s) in [
            (0x0001, "C-STORE-RQ", "C-STORE"),
            (0x8001, "C-STORE-RSP", "C-STORE"),
            (0x0010, "C-GET-RQ", "C-GET"),
            (0x8020, "C-FIND-RSP", "C-FIND"),
            (0x0021, "C-MOVE-RQ", "C-MOVE"),
            (0x8030, "C-ECHO-RSP", "C-ECHO"),
            (0x0100, "N-EVENT-REPORT-RQ", "N-EVENT-REPORT"),
            (0x8110, "N-GET-RSP", "N-GET"),
            (0x0120, "N-SET-RQ", "N-SET"),
            (0x8130, "N-ACTION-RSP", "N-ACTION"),
            (0x0140, "N-CREATE-RQ", "N-CREATE"),
            (0x8150, "N-DELETE-RSP", "N-DELETE"),
            (0x0FFF, "C-CANCEL-RQ", "C-CANCEL"),
            (0x1234, "UNKNOWN", "UNKNOWN"),
        ] {
            assert_eq!(command_name(f), n);
            assert_eq!(service_name(f), s);
        }
        let cancel = Command {
            responded_to: Some(9),
            message_id: Some(1),
            ..Command::new(field::C_CANCEL_RQ)
        };
        assert!(cancel.is_request());
        assert_eq!(cancel.pairing_id(), Some(9));
    }

    #[test]
    fn truncation_is_an_error() {
        let mut bytes = echo_rq();
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            decode_command(&bytes),
            Err(CommandError::Truncated {
                group: 0,
                element: 0x0800,
                length: 2,
                available: 1,
                ..
            })
        ));
        let mut bytes = echo_rq();
        bytes.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            decode_command(&bytes),
            Err(CommandError::TruncatedHeader {
                offset: bytes.len() - 3,
                available: 3
            })
        );
        // A huge declared length is refused before anything is allocated.
        let mut huge = el(0, 0x0002, b"");
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_command(&huge),
            Err(CommandError::Truncated {
                length: u32::MAX,
                ..
            })
        ));
        assert_eq!(decode_command(&[]), Err(CommandError::NoCommandField));
        assert_eq!(
            decode_command(&with_group_length(&el(0, 0x0110, &[1, 0]))),
            Err(CommandError::NoCommandField)
        );
    }

    #[test]
    fn oddities_are_noted() {
        let mut body = Vec::new();
        body.extend(el(0, 0x0002, b"1.2.840.10008.1.1 ")); // space padding
        body.extend(el(0, 0x0100, &0x8030u16.to_le_bytes()));
        body.extend(el(0, 0x0120, &[5, 0, 0, 0])); // US with 4 bytes
        body.extend(el(0, 0x0800, &0x0101u16.to_le_bytes()));
        body.extend(el(0, 0x0850, &[0, 0])); // retired Number of Matches
        body.extend(el(0, 0x0110, &[1, 0])); // out of order
        body.extend(el(0, 0x1000, b"1.2.03\0\0")); // invalid, two NULs
        body.extend(el(0x0008, 0x0018, b"1.2\0")); // not group 0000
        let mut bytes = el(0, 0, &999u32.to_le_bytes());
        bytes.extend_from_slice(&body);
        let cmd = decode_command(&bytes).unwrap_or_default();
        assert_eq!(cmd.command, "C-ECHO-RSP");
        assert_eq!(cmd.affected_sop_class.as_deref(), Some("1.2.840.10008.1.1"));
        assert_eq!(cmd.responded_to, Some(5));
        assert_eq!(cmd.affected_sop_instance.as_deref(), Some("1.2.03"));
        let kinds: Vec<String> = cmd
            .notes
            .iter()
            .map(|n| {
                serde_json::to_value(n).unwrap_or_default()["note"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "group_length_mismatch",
                "uid_padding",
                "bad_length",
                "unknown_element",
                "out_of_order",
                "uid_padding",
                "invalid_uid",
                "unknown_element",
                "missing",
            ]
        );
        assert_eq!(
            cmd.notes.last(),
            Some(&CommandNote::Missing {
                tag: "(0000,0900)".into()
            })
        );
        assert_eq!(
            cmd.notes.first(),
            Some(&CommandNote::GroupLengthMismatch {
                declared: 999,
                actual: u64::try_from(body.len()).unwrap_or(0)
            })
        );
        let f = cmd.notes[6].to_finding();
        assert_eq!(f.code, FindingCode::InvalidUid);
        assert!(f.message.contains("1.2.03"), "{}", f.message);
    }

    #[test]
    fn missing_group_length_and_duplicates() {
        let mut bytes = Vec::new();
        bytes.extend(el(0, 0x0100, &0x0030u16.to_le_bytes()));
        bytes.extend(el(0, 0x0100, &0x0030u16.to_le_bytes()));
        let cmd = decode_command(&bytes).unwrap_or_default();
        assert_eq!(cmd.notes.first(), Some(&CommandNote::NoGroupLength));
        assert!(
            cmd.notes
                .iter()
                .any(|n| matches!(n, CommandNote::Duplicate { .. }))
        );
        let missing: Vec<_> = cmd
            .notes
            .iter()
            .filter_map(|n| match n {
                CommandNote::Missing { tag } => Some(tag.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(missing, ["(0000,0002)", "(0000,0110)", "(0000,0800)"]);
    }

    #[test]
    fn encoder_pads_and_counts() {
        let mut c = Command::new(field::C_MOVE_RQ);
        c.message_id = Some(1);
        c.priority = Some(0);
        c.affected_sop_class = Some("1.2.840.10008.5.1.4.1.2.2.2".into()); // 27 chars
        c.move_destination = Some("STORESCP".into());
        c.error_comment = Some("odd".into());
        c.has_dataset = true;
        let b = encode_command(&c);
        // (0000,0002) right after the group length, padded with one NUL.
        assert_eq!(le16(&b, 14), Some(0x0002));
        assert_eq!(le32(&b, 16), Some(28));
        assert_eq!(b.get(20 + 27), Some(&0u8));
        let d = decode_command(&b).unwrap_or_default();
        assert_eq!(d.error_comment.as_deref(), Some("odd"));
        assert_eq!(d.move_destination.as_deref(), Some("STORESCP"));
        assert_eq!(d.notes, vec![]);
        assert_eq!(parse_tag("(0008,0018)"), Some((8, 0x18)));
        assert_eq!(parse_tag("00100020"), Some((0x10, 0x20)));
        assert_eq!(parse_tag("nonsense"), None);
    }

    #[test]
    fn encodes_canonical_echo_rsp() {
        // A C-ECHO-RSP as pynetdicom writes it (status success).
        let mut body = Vec::new();
        body.extend(el(0, 0x0002, b"1.2.840.10008.1.1\0"));
        body.extend(el(0, 0x0100, &0x8030u16.to_le_bytes()));
        body.extend(el(0, 0x0120, &1u16.to_le_bytes()));
        body.extend(el(0, 0x0800, &0x0101u16.to_le_bytes()));
        body.extend(el(0, 0x0900, &0u16.to_le_bytes()));
        let expected = with_group_length(&body);
        let mut c = Command::new(field::C_ECHO_RSP);
        c.affected_sop_class = Some("1.2.840.10008.1.1".into());
        c.responded_to = Some(1);
        c.status = Some(classify(0, field::C_ECHO_RSP));
        assert_eq!(encode_command(&c), expected);
    }

    fn arb_uid() -> impl Strategy<Value = String> {
        prop::collection::vec(0u32..100_000, 1..8).prop_map(|parts| {
            let mut s = String::from("1.2");
            for p in parts {
                s.push('.');
                s.push_str(&p.to_string());
            }
            s
        })
    }

    fn arb_text() -> impl Strategy<Value = String> {
        "[A-Z0-9_][A-Z0-9_ ]{0,14}[A-Z0-9_]"
    }

    fn arb_tag() -> impl Strategy<Value = String> {
        (any::<u16>(), any::<u16>()).prop_map(|(g, e)| tag_str(g, e))
    }

    prop_compose! {
        fn arb_command()(
            field in prop::sample::select(vec![
                0x0001u16, 0x8001, 0x0010, 0x8010, 0x0020, 0x8020, 0x0021, 0x8021, 0x0030,
                0x8030, 0x0100, 0x8100, 0x0110, 0x8110, 0x0120, 0x8120, 0x0130, 0x8130,
                0x0140, 0x8140, 0x0150, 0x8150, 0x0FFF, 0x4242,
            ]),
            ids in (any::<Option<u16>>(), any::<Option<u16>>(), any::<Option<u16>>()),
            uids in (
                prop::option::of(arb_uid()),
                prop::option::of(arb_uid()),
                prop::option::of(arb_uid()),
                prop::option::of(arb_uid()),
            ),
            texts in (
                prop::option::of(arb_text()),
                prop::option::of(arb_text()),
                prop::option::of(arb_text()),
            ),
            status in any::<Option<u16>>(),
            data_set in prop::option::of(prop::sample::select(vec![0x0000u16, 0x0001, 0x0102, 0xFEFE])),
            offending in prop::collection::vec(arb_tag(), 0..4),
            attrs in prop::collection::vec(arb_tag(), 0..4),
            more in (any::<Option<u16>>(), any::<Option<u16>>(), any::<Option<u16>>(), any::<Option<u16>>()),
            sub in prop::option::of((any::<Option<u16>>(), any::<Option<u16>>(), any::<Option<u16>>(), any::<Option<u16>>())),
        ) -> Command {
            let sub_operations = sub
                .map(|(remaining, completed, failed, warning)| SubOperations { remaining, completed, failed, warning })
                .filter(|s| *s != SubOperations::default());
            Command {
                message_id: ids.0,
                responded_to: ids.1,
                move_originator_message_id: ids.2,
                affected_sop_class: uids.0,
                requested_sop_class: uids.1,
                affected_sop_instance: uids.2,
                requested_sop_instance: uids.3,
                move_destination: texts.0,
                move_originator_ae: texts.1,
                error_comment: texts.2,
                status: status.map(|s| classify(s, field)),
                has_dataset: data_set.is_some(),
                data_set_type: Some(data_set.unwrap_or(NO_DATA_SET)),
                offending_elements: offending,
                attribute_identifiers: attrs,
                priority: more.0,
                error_id: more.1,
                event_type_id: more.2,
                action_type_id: more.3,
                sub_operations,
                ..Command::new(field)
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_command(&bytes);
        }

        /// Plausible element headers with random lengths and values reach deeper than
        /// uniform noise.
        #[test]
        fn random_elements_never_panic(
            elems in prop::collection::vec(
                (0u16..2, prop::sample::select(vec![
                    0x0000u16, 0x0002, 0x0100, 0x0120, 0x0600, 0x0800, 0x0900, 0x0901,
                    0x1000, 0x1005, 0x1020, 0x1031, 0x7777,
                ]), prop::collection::vec(any::<u8>(), 0..24), any::<bool>(), any::<u32>()),
                0..16,
            ),
        ) {
            let mut bytes = Vec::new();
            for (g, e, value, lie, len) in elems {
                let mut v = el(g, e, &value);
                if lie {
                    v[4..8].copy_from_slice(&len.to_le_bytes());
                }
                bytes.extend(v);
            }
            if let Ok(cmd) = decode_command(&bytes) {
                for n in &cmd.notes {
                    let _ = n.to_finding();
                }
                let _ = serde_json::to_string(&cmd);
            }
        }

        #[test]
        fn encode_decode_round_trip(cmd in arb_command()) {
            let bytes = encode_command(&cmd);
            prop_assert_eq!(bytes.len() % 2, 0);
            let mut decoded = decode_command(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(
                decoded.notes.iter().all(|n| matches!(n, CommandNote::Missing { .. })),
                "{:?}", decoded.notes
            );
            prop_assert_eq!(decoded.group_length.and_then(|l| usize::try_from(l).ok()), Some(bytes.len() - 12));
            decoded.notes.clear();
            decoded.group_length = None;
            prop_assert_eq!(&decoded, &cmd);
            // And encoding the decoded command gives the same bytes.
            prop_assert_eq!(encode_command(&decoded), bytes);
        }
    }
}
