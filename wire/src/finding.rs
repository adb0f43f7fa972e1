//! Protocol findings: oddities and violations the engine notices while decoding. A finding
//! never stops decoding; it names what was seen and where.

use serde::Serialize;

/// How much a finding matters to an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing, harmless on its own.
    Info,
    /// Tolerated by lenient peers, refused by strict ones.
    Warning,
    /// A violation of PS3.7/PS3.8 that breaks or risks breaking the exchange.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!(
                "unknown severity {other:?} (expected info, warning or error)"
            )),
        }
    }
}

/// Stable identifiers of protocol findings. The snake_case name is the id in JSON, metrics
/// and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// A PDU type outside 0x01..=0x07.
    UnknownPduType,
    /// A PDU, item or sub-item length that disagrees with its content or container.
    LengthMismatch,
    /// An association PDU larger than the engine buffers; skipped undecoded.
    PduTooLarge,
    /// A P-DATA-TF larger than the receiver's advertised Max Length.
    PduExceedsMaxLength,
    /// Reserved field not zero, or a fixed field with an unexpected value.
    ReservedField,
    /// An item or sub-item type the standard does not define; kept and skipped.
    UnknownItem,
    /// A UID with a trailing NUL or space, or characters outside 0-9 and '.'.
    UidPadding,
    InvalidUid,
    /// Presentation context ID even, zero, or repeated.
    BadContextId,
    DuplicateContextId,
    /// More than 128 presentation contexts.
    TooManyContexts,
    /// A rejected context without a transfer syntax sub-item (tolerated), or an accepted one
    /// without.
    MissingTransferSyntax,
    /// An accepted context whose transfer syntax was not among those proposed.
    TransferSyntaxNotProposed,
    /// A result for a context ID never proposed.
    UnproposedContext,
    /// A reason, source, or result code outside the tables of PS3.8.
    UnknownReasonCode,
    /// A PDU that is not valid in the association's current state (P-DATA before AC, data
    /// after A-ABORT, a second RQ...).
    UnexpectedPdu,
    /// P-DATA on a context that was not accepted.
    UnacceptedContext,
    /// PDV item length disagrees with the PDU, or a fragment is empty.
    PdvLength,
    /// Control header bits outside 0..=3, or a command/data fragment out of order.
    PdvControl,
    /// A command set that could not be decoded.
    MalformedCommand,
    /// A command set larger than the engine buffers.
    CommandTooLarge,
    /// A response whose Message ID Being Responded To matches no outstanding request.
    UnmatchedResponse,
    /// A message ID reused while the first request is still outstanding.
    DuplicateMessageId,
    /// A data set that could not be peeked (bad element lengths, unknown syntax...).
    MalformedDataset,
    /// Text values not valid in the declared Specific Character Set.
    InvalidText,
    /// The negotiation of this association was not seen (capture started late).
    NegotiationNotSeen,
    /// A stream ended in the middle of a PDU.
    TruncatedPdu,
    /// Bytes missing from a capture.
    CaptureGap,
    /// Bytes skipped to find the next PDU boundary.
    Garbage,
    /// The connection closed while the association was still established (no A-RELEASE,
    /// no A-ABORT): PS3.8 treats this as a provider abort.
    ClosedWithoutRelease,
    /// A command or data set that never got its last fragment.
    IncompleteMessage,
    /// A data set not encoded the way its context's transfer syntax says.
    EncodingMismatch,
}

impl FindingCode {
    /// Every code, in declaration order (for docs and metrics pre-registration).
    pub const ALL: [FindingCode; 32] = [
        FindingCode::UnknownPduType,
        FindingCode::LengthMismatch,
        FindingCode::PduTooLarge,
        FindingCode::PduExceedsMaxLength,
        FindingCode::ReservedField,
        FindingCode::UnknownItem,
        FindingCode::UidPadding,
        FindingCode::InvalidUid,
        FindingCode::BadContextId,
        FindingCode::DuplicateContextId,
        FindingCode::TooManyContexts,
        FindingCode::MissingTransferSyntax,
        FindingCode::TransferSyntaxNotProposed,
        FindingCode::UnproposedContext,
        FindingCode::UnknownReasonCode,
        FindingCode::UnexpectedPdu,
        FindingCode::UnacceptedContext,
        FindingCode::PdvLength,
        FindingCode::PdvControl,
        FindingCode::MalformedCommand,
        FindingCode::CommandTooLarge,
        FindingCode::UnmatchedResponse,
        FindingCode::DuplicateMessageId,
        FindingCode::MalformedDataset,
        FindingCode::InvalidText,
        FindingCode::NegotiationNotSeen,
        FindingCode::TruncatedPdu,
        FindingCode::CaptureGap,
        FindingCode::Garbage,
        FindingCode::ClosedWithoutRelease,
        FindingCode::IncompleteMessage,
        FindingCode::EncodingMismatch,
    ];

    /// The stable id, as in JSON and metrics labels.
    pub fn id(self) -> &'static str {
        match self {
            FindingCode::UnknownPduType => "unknown_pdu_type",
            FindingCode::LengthMismatch => "length_mismatch",
            FindingCode::PduTooLarge => "pdu_too_large",
            FindingCode::PduExceedsMaxLength => "pdu_exceeds_max_length",
            FindingCode::ReservedField => "reserved_field",
            FindingCode::UnknownItem => "unknown_item",
            FindingCode::UidPadding => "uid_padding",
            FindingCode::InvalidUid => "invalid_uid",
            FindingCode::BadContextId => "bad_context_id",
            FindingCode::DuplicateContextId => "duplicate_context_id",
            FindingCode::TooManyContexts => "too_many_contexts",
            FindingCode::MissingTransferSyntax => "missing_transfer_syntax",
            FindingCode::TransferSyntaxNotProposed => "transfer_syntax_not_proposed",
            FindingCode::UnproposedContext => "unproposed_context",
            FindingCode::UnknownReasonCode => "unknown_reason_code",
            FindingCode::UnexpectedPdu => "unexpected_pdu",
            FindingCode::UnacceptedContext => "unaccepted_context",
            FindingCode::PdvLength => "pdv_length",
            FindingCode::PdvControl => "pdv_control",
            FindingCode::MalformedCommand => "malformed_command",
            FindingCode::CommandTooLarge => "command_too_large",
            FindingCode::UnmatchedResponse => "unmatched_response",
            FindingCode::DuplicateMessageId => "duplicate_message_id",
            FindingCode::MalformedDataset => "malformed_dataset",
            FindingCode::InvalidText => "invalid_text",
            FindingCode::NegotiationNotSeen => "negotiation_not_seen",
            FindingCode::TruncatedPdu => "truncated_pdu",
            FindingCode::CaptureGap => "capture_gap",
            FindingCode::Garbage => "garbage",
            FindingCode::ClosedWithoutRelease => "closed_without_release",
            FindingCode::IncompleteMessage => "incomplete_message",
            FindingCode::EncodingMismatch => "encoding_mismatch",
        }
    }
}

/// One finding: what, how bad, where (byte offset in the sender's stream), in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(code: FindingCode, severity: Severity, message: impl Into<String>) -> Self {
        Finding {
            code,
            severity,
            message: message.into(),
        }
    }
}
