//! Association PDUs (PS3.8 9.3.2 to 9.3.8) and their items and sub-items (PS3.8 Annex D,
//! PS3.7 Annex D): decoded leniently, with every oddity turned into a finding.

use serde::Serialize;

/// A presentation context as proposed in an A-ASSOCIATE-RQ (item 0x20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProposedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntaxes: Vec<String>,
}

/// A presentation context result in an A-ASSOCIATE-AC (item 0x21).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextResult {
    pub id: u8,
    /// 0 acceptance, 1 user-rejection, 2 no-reason, 3 abstract syntax not supported,
    /// 4 transfer syntaxes not supported.
    pub result: u8,
    pub result_name: &'static str,
    pub transfer_syntax: Option<String>,
}

impl ContextResult {
    pub fn accepted(&self) -> bool {
        self.result == 0
    }
}

/// Names of the presentation context results (PS3.8 Table 9-18).
pub fn context_result_name(result: u8) -> &'static str {
    match result {
        0 => "acceptance",
        1 => "user-rejection",
        2 => "no-reason",
        3 => "abstract-syntax-not-supported",
        4 => "transfer-syntaxes-not-supported",
        _ => "unknown",
    }
}

/// SCP/SCU Role Selection sub-item (0x54).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleSelection {
    pub sop_class: String,
    pub scu: bool,
    pub scp: bool,
}

/// SOP Class Extended Negotiation sub-item (0x56): the service-class-specific bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtendedNegotiation {
    pub sop_class: String,
    /// The application information bytes, as hex.
    pub info: String,
}

/// SOP Class Common Extended Negotiation sub-item (0x57).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommonExtendedNegotiation {
    pub sop_class: String,
    pub service_class: String,
    pub related_general_sop_classes: Vec<String>,
}

/// User Identity Negotiation request (0x58). Passcodes, Kerberos tickets, SAML assertions
/// and JWTs are never kept; only their lengths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserIdentityRequest {
    /// 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT.
    pub identity_type: u8,
    pub identity_type_name: &'static str,
    pub positive_response_requested: bool,
    /// The username, for types 1 and 2 only.
    pub username: Option<String>,
    pub primary_field_length: u16,
    pub secondary_field_length: u16,
}

/// Names of the user identity types (PS3.7 Table D.3-14).
pub fn user_identity_type_name(t: u8) -> &'static str {
    match t {
        1 => "username",
        2 => "username_passcode",
        3 => "kerberos",
        4 => "saml",
        5 => "jwt",
        _ => "unknown",
    }
}

/// An item or sub-item the decoder does not know; kept so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownItem {
    pub item_type: u8,
    pub length: u16,
    /// Offset of the item in the sender's stream.
    pub offset: u64,
}

/// The User Information item (0x50) and its sub-items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct UserInformation {
    /// Maximum Length Received (0x51); 0 means unlimited.
    pub max_length: Option<u32>,
    pub implementation_class_uid: Option<String>,
    pub implementation_version_name: Option<String>,
    /// Asynchronous Operations Window (0x53): (invoked, performed).
    pub async_window: Option<(u16, u16)>,
    pub role_selections: Vec<RoleSelection>,
    pub extended_negotiation: Vec<ExtendedNegotiation>,
    pub common_extended_negotiation: Vec<CommonExtendedNegotiation>,
    pub user_identity: Option<UserIdentityRequest>,
    /// User Identity server response (0x59): its length (the response itself is not kept).
    pub user_identity_response_length: Option<u16>,
    pub unknown: Vec<UnknownItem>,
}

/// A-ASSOCIATE-RQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssociateRequest {
    pub protocol_version: u16,
    /// Called AE title, trailing spaces trimmed.
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: Option<String>,
    pub contexts: Vec<ProposedContext>,
    pub user_info: UserInformation,
    pub unknown: Vec<UnknownItem>,
}

/// A-ASSOCIATE-AC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssociateAccept {
    pub protocol_version: u16,
    /// Echoed called AE title (PS3.8 says "not tested", but devices differ).
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: Option<String>,
    pub results: Vec<ContextResult>,
    pub user_info: UserInformation,
    pub unknown: Vec<UnknownItem>,
}

/// A-ASSOCIATE-RJ (PS3.8 9.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssociateReject {
    /// 1 rejected-permanent, 2 rejected-transient.
    pub result: u8,
    /// 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
    pub source: u8,
    pub reason: u8,
    /// Words for result, source and reason, e.g.
    /// "rejected-permanent, service-user: calling-AE-title-not-recognized".
    pub description: String,
}

/// A-ABORT (PS3.8 9.3.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Abort {
    /// 0 service-user, 2 service-provider.
    pub source: u8,
    pub reason: u8,
    pub description: String,
}
