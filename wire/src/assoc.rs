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

impl UserInformation {
    /// The role selection sub-item for `sop_class`, if one was sent.
    pub fn role_selection(&self, sop_class: &str) -> Option<&RoleSelection> {
        self.role_selections
            .iter()
            .find(|r| r.sop_class == sop_class)
    }
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

use crate::finding::{Finding, FindingCode, Severity};
use crate::uid;

/// Findings noted while decoding, each with its offset in the sender's stream.
pub type Notes = Vec<(u64, Finding)>;

/// Length of the fixed part of A-ASSOCIATE-RQ/AC after the PDU header.
const FIXED_LEN: usize = 68;

/// Decodes the body (after the 6-byte header) of an A-ASSOCIATE-RQ starting at stream
/// offset `base`.
pub fn decode_request(
    body: &[u8],
    base: u64,
    notes: &mut Notes,
) -> Result<AssociateRequest, String> {
    let mut d = Decoder { base, notes };
    let fixed = d.fixed(body, "A-ASSOCIATE-RQ")?;
    let mut rq = AssociateRequest {
        protocol_version: fixed.protocol_version,
        called_ae: fixed.called_ae,
        calling_ae: fixed.calling_ae,
        application_context: None,
        contexts: Vec::new(),
        user_info: UserInformation::default(),
        unknown: Vec::new(),
    };
    for item in d.items(body, FIXED_LEN, base, "A-ASSOCIATE-RQ") {
        match item.item_type {
            0x10 => {
                rq.application_context =
                    Some(d.uid(item.value, item.offset + 4, "application context"))
            }
            0x20 => {
                if let Some(pc) = d.proposed_context(item.value, item.offset) {
                    rq.contexts.push(pc);
                }
            }
            0x50 => rq.user_info = d.user_info(item.value, item.offset, true),
            _ => rq.unknown.push(d.unknown(&item, "A-ASSOCIATE-RQ")),
        }
    }
    d.check_contexts(rq.contexts.iter().map(|c| c.id), base);
    if rq.application_context.is_none() {
        d.note(
            base,
            FindingCode::LengthMismatch,
            Severity::Warning,
            "A-ASSOCIATE-RQ has no application context item",
        );
    }
    Ok(rq)
}

/// Decodes the body of an A-ASSOCIATE-AC starting at stream offset `base`.
pub fn decode_accept(body: &[u8], base: u64, notes: &mut Notes) -> Result<AssociateAccept, String> {
    let mut d = Decoder { base, notes };
    let fixed = d.fixed(body, "A-ASSOCIATE-AC")?;
    let mut ac = AssociateAccept {
        protocol_version: fixed.protocol_version,
        called_ae: fixed.called_ae,
        calling_ae: fixed.calling_ae,
        application_context: None,
        results: Vec::new(),
        user_info: UserInformation::default(),
        unknown: Vec::new(),
    };
    for item in d.items(body, FIXED_LEN, base, "A-ASSOCIATE-AC") {
        match item.item_type {
            0x10 => {
                ac.application_context =
                    Some(d.uid(item.value, item.offset + 4, "application context"))
            }
            0x21 => {
                if let Some(r) = d.context_result(item.value, item.offset) {
                    ac.results.push(r);
                }
            }
            0x50 => ac.user_info = d.user_info(item.value, item.offset, false),
            _ => ac.unknown.push(d.unknown(&item, "A-ASSOCIATE-AC")),
        }
    }
    d.check_contexts(ac.results.iter().map(|c| c.id), base);
    Ok(ac)
}

/// Decodes the body of an A-ASSOCIATE-RJ.
pub fn decode_reject(body: &[u8], base: u64, notes: &mut Notes) -> Result<AssociateReject, String> {
    let [_, result, source, reason] = four(body, "A-ASSOCIATE-RJ")?;
    let (description, known) = crate::pdu::reject_description(result, source, reason);
    if !known {
        notes.push((
            base,
            Finding::new(
                FindingCode::UnknownReasonCode,
                Severity::Warning,
                format!("A-ASSOCIATE-RJ with codes outside PS3.8 Table 9-21: {description}"),
            ),
        ));
    }
    Ok(AssociateReject {
        result,
        source,
        reason,
        description,
    })
}

/// Decodes the body of an A-ABORT.
pub fn decode_abort(body: &[u8], base: u64, notes: &mut Notes) -> Result<Abort, String> {
    let [_, _, source, reason] = four(body, "A-ABORT")?;
    let (description, known) = crate::pdu::abort_description(source, reason);
    if !known {
        notes.push((
            base,
            Finding::new(
                FindingCode::UnknownReasonCode,
                Severity::Warning,
                format!("A-ABORT with codes outside PS3.8 Table 9-26: {description}"),
            ),
        ));
    }
    Ok(Abort {
        source,
        reason,
        description,
    })
}

fn four(body: &[u8], what: &str) -> Result<[u8; 4], String> {
    body.get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or_else(|| format!("{what} body is {} bytes, 4 expected", body.len()))
}

struct Fixed {
    protocol_version: u16,
    called_ae: String,
    calling_ae: String,
}

struct Item<'a> {
    item_type: u8,
    /// Offset of the item header in the stream.
    offset: u64,
    value: &'a [u8],
}

struct Decoder<'n> {
    base: u64,
    notes: &'n mut Notes,
}

impl Decoder<'_> {
    fn note(&mut self, offset: u64, code: FindingCode, severity: Severity, msg: impl Into<String>) {
        self.notes.push((offset, Finding::new(code, severity, msg)));
    }

    fn fixed(&mut self, body: &[u8], what: &str) -> Result<Fixed, String> {
        if body.len() < FIXED_LEN {
            return Err(format!(
                "{what} body is {} bytes, shorter than its {FIXED_LEN}-byte fixed part",
                body.len()
            ));
        }
        let protocol_version = u16::from_be_bytes([body[0], body[1]]);
        if protocol_version & 1 == 0 {
            self.note(
                self.base,
                FindingCode::ReservedField,
                Severity::Warning,
                format!("{what} protocol version 0x{protocol_version:04X} lacks bit 0 (version 1)"),
            );
        }
        let called_ae = self.ae(&body[4..20], self.base + 4, what, "called");
        let calling_ae = self.ae(&body[20..36], self.base + 20, what, "calling");
        Ok(Fixed {
            protocol_version,
            called_ae,
            calling_ae,
        })
    }

    fn ae(&mut self, raw: &[u8], offset: u64, what: &str, which: &str) -> String {
        if raw.contains(&0) {
            self.note(
                offset,
                FindingCode::ReservedField,
                Severity::Info,
                format!("{what} {which} AE title is padded with NUL instead of spaces"),
            );
        }
        let s: String = raw
            .iter()
            .map(|&b| if b == 0 { ' ' } else { b as char })
            .collect();
        s.trim().to_string()
    }

    /// Splits `body[start..]` into items (type, reserved, 16-bit length), reporting a length
    /// that overruns its container and stopping there.
    fn items<'a>(&mut self, body: &'a [u8], start: usize, base: u64, what: &str) -> Vec<Item<'a>> {
        let mut out = Vec::new();
        let mut pos = start;
        while pos < body.len() {
            let Some(h) = body.get(pos..pos + 4) else {
                self.note(
                    base + pos as u64,
                    FindingCode::LengthMismatch,
                    Severity::Warning,
                    format!(
                        "{what}: {} trailing bytes too short for an item header",
                        body.len() - pos
                    ),
                );
                break;
            };
            let len = u16::from_be_bytes([h[2], h[3]]) as usize;
            let end = pos + 4 + len;
            let Some(value) = body.get(pos + 4..end) else {
                self.note(
                    base + pos as u64,
                    FindingCode::LengthMismatch,
                    Severity::Error,
                    format!(
                        "{what}: item 0x{:02X} declares {len} bytes, only {} remain",
                        h[0],
                        body.len() - pos - 4
                    ),
                );
                break;
            };
            out.push(Item {
                item_type: h[0],
                offset: base + pos as u64,
                value,
            });
            pos = end;
        }
        out
    }

    fn unknown(&mut self, item: &Item<'_>, what: &str) -> UnknownItem {
        self.note(
            item.offset,
            FindingCode::UnknownItem,
            Severity::Warning,
            format!(
                "{what}: unknown item type 0x{:02X} ({} bytes) kept and skipped",
                item.item_type,
                item.value.len()
            ),
        );
        UnknownItem {
            item_type: item.item_type,
            length: item.value.len() as u16,
            offset: item.offset,
        }
    }

    fn uid(&mut self, raw: &[u8], offset: u64, what: &str) -> String {
        let w = uid::from_wire(raw);
        if w.padded {
            let nul = raw.last() == Some(&0);
            if !(nul && raw.len() % 2 == 0 && raw.len() >= 2 && raw[raw.len() - 2] != 0) {
                self.note(
                    offset,
                    FindingCode::UidPadding,
                    Severity::Info,
                    format!("{what} UID {:?} has trailing padding (trimmed)", w.uid),
                );
            } else {
                self.note(
                    offset,
                    FindingCode::UidPadding,
                    Severity::Info,
                    format!(
                        "{what} UID {:?} has a trailing NUL (trimmed; PS3.8 UIDs are not padded)",
                        w.uid
                    ),
                );
            }
        }
        if !w.valid {
            self.note(
                offset,
                FindingCode::InvalidUid,
                Severity::Warning,
                format!("{what} UID {:?} is not a valid UID", w.uid),
            );
        }
        w.uid
    }

    fn sub_uid(
        &mut self,
        value: &[u8],
        pos: usize,
        offset: u64,
        what: &str,
    ) -> Option<(String, usize)> {
        let len = value
            .get(pos..pos + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)?;
        let raw = value.get(pos + 2..pos + 2 + len);
        match raw {
            Some(raw) => Some((self.uid(raw, offset + pos as u64, what), pos + 2 + len)),
            None => {
                self.note(
                    offset,
                    FindingCode::LengthMismatch,
                    Severity::Error,
                    format!("{what} UID length {len} overruns its sub-item"),
                );
                None
            }
        }
    }

    fn proposed_context(&mut self, value: &[u8], offset: u64) -> Option<ProposedContext> {
        let Some(&id) = value.first() else {
            self.note(
                offset,
                FindingCode::LengthMismatch,
                Severity::Error,
                "presentation context item shorter than 4 bytes",
            );
            return None;
        };
        if value.len() < 4 {
            self.note(
                offset,
                FindingCode::LengthMismatch,
                Severity::Error,
                "presentation context item shorter than 4 bytes",
            );
            return None;
        }
        let mut pc = ProposedContext {
            id,
            abstract_syntax: String::new(),
            transfer_syntaxes: Vec::new(),
        };
        let mut abstract_seen = false;
        for sub in self.items(value, 4, offset + 4, "presentation context") {
            let sub_offset = sub.offset;
            match sub.item_type {
                0x30 => {
                    if abstract_seen {
                        self.note(
                            sub_offset,
                            FindingCode::LengthMismatch,
                            Severity::Warning,
                            format!("presentation context {id} has more than one abstract syntax"),
                        );
                    }
                    abstract_seen = true;
                    pc.abstract_syntax = self.uid(sub.value, sub_offset + 4, "abstract syntax");
                }
                0x40 => {
                    let ts = self.uid(sub.value, sub_offset + 4, "transfer syntax");
                    pc.transfer_syntaxes.push(ts);
                }
                _ => {
                    self.note(
                        sub_offset,
                        FindingCode::UnknownItem,
                        Severity::Warning,
                        format!(
                            "presentation context {id}: unknown sub-item 0x{:02X} skipped",
                            sub.item_type
                        ),
                    );
                }
            }
        }
        if !abstract_seen {
            self.note(
                offset,
                FindingCode::LengthMismatch,
                Severity::Error,
                format!("presentation context {id} has no abstract syntax"),
            );
        }
        if pc.transfer_syntaxes.is_empty() {
            self.note(
                offset,
                FindingCode::MissingTransferSyntax,
                Severity::Error,
                format!("presentation context {id} proposes no transfer syntax"),
            );
        }
        Some(pc)
    }

    fn context_result(&mut self, value: &[u8], offset: u64) -> Option<ContextResult> {
        if value.len() < 4 {
            self.note(
                offset,
                FindingCode::LengthMismatch,
                Severity::Error,
                "presentation context result item shorter than 4 bytes",
            );
            return None;
        }
        let id = value[0];
        let result = value[2];
        if result > 4 {
            self.note(
                offset,
                FindingCode::UnknownReasonCode,
                Severity::Warning,
                format!("presentation context {id}: result {result} is outside PS3.8 Table 9-18"),
            );
        }
        let mut r = ContextResult {
            id,
            result,
            result_name: context_result_name(result),
            transfer_syntax: None,
        };
        for sub in self.items(value, 4, offset + 4, "presentation context result") {
            let sub_offset = sub.offset;
            match sub.item_type {
                0x40 => {
                    r.transfer_syntax = Some(self.uid(sub.value, sub_offset + 4, "transfer syntax"))
                }
                _ => {
                    self.note(
                        sub_offset,
                        FindingCode::UnknownItem,
                        Severity::Warning,
                        format!(
                            "presentation context result {id}: unknown sub-item 0x{:02X} skipped",
                            sub.item_type
                        ),
                    );
                }
            }
        }
        // An empty transfer syntax sub-item counts as absent.
        if r.transfer_syntax.as_deref() == Some("") {
            r.transfer_syntax = None;
        }
        match (r.accepted(), r.transfer_syntax.is_some()) {
            (true, false) => self.note(offset, FindingCode::MissingTransferSyntax, Severity::Error, format!("presentation context {id} accepted without a transfer syntax")),
            (false, false) => self.note(offset, FindingCode::MissingTransferSyntax, Severity::Info, format!("presentation context {id} rejected ({}) without a transfer syntax sub-item (tolerated)", r.result_name)),
            _ => {}
        }
        Some(r)
    }

    fn user_info(&mut self, value: &[u8], offset: u64, request: bool) -> UserInformation {
        let mut ui = UserInformation::default();
        for sub in self.items(value, 0, offset + 4, "user information") {
            let v = sub.value;
            let so = sub.offset;
            match sub.item_type {
                0x51 => match <[u8; 4]>::try_from(v) {
                    Ok(b) => ui.max_length = Some(u32::from_be_bytes(b)),
                    Err(_) => self.note(
                        so,
                        FindingCode::LengthMismatch,
                        Severity::Error,
                        format!("maximum length sub-item is {} bytes, 4 expected", v.len()),
                    ),
                },
                0x52 => {
                    ui.implementation_class_uid = Some(self.uid(v, so + 4, "implementation class"))
                }
                0x53 => match <[u8; 4]>::try_from(v) {
                    Ok(b) => {
                        ui.async_window = Some((
                            u16::from_be_bytes([b[0], b[1]]),
                            u16::from_be_bytes([b[2], b[3]]),
                        ))
                    }
                    Err(_) => self.note(
                        so,
                        FindingCode::LengthMismatch,
                        Severity::Error,
                        format!(
                            "asynchronous operations window sub-item is {} bytes, 4 expected",
                            v.len()
                        ),
                    ),
                },
                0x54 => {
                    if let Some((sop_class, p)) =
                        self.sub_uid(v, 0, so + 4, "role selection SOP class")
                    {
                        match v.get(p..p + 2) {
                            Some(r) => {
                                if r[0] > 1 || r[1] > 1 {
                                    self.note(so, FindingCode::ReservedField, Severity::Warning, format!("role selection for {sop_class}: SCU/SCP role values {} and {} (0 or 1 expected)", r[0], r[1]));
                                }
                                ui.role_selections.push(RoleSelection {
                                    sop_class,
                                    scu: r[0] != 0,
                                    scp: r[1] != 0,
                                });
                            }
                            None => self.note(
                                so,
                                FindingCode::LengthMismatch,
                                Severity::Error,
                                "role selection sub-item lacks its SCU/SCP role bytes",
                            ),
                        }
                    }
                }
                0x55 => {
                    let name = String::from_utf8_lossy(v)
                        .trim_end_matches(['\0', ' '])
                        .to_string();
                    if v.len() > 16 {
                        self.note(
                            so,
                            FindingCode::LengthMismatch,
                            Severity::Warning,
                            format!(
                                "implementation version name is {} bytes, at most 16 allowed",
                                v.len()
                            ),
                        );
                    }
                    ui.implementation_version_name = Some(name);
                }
                0x56 => {
                    if let Some((sop_class, p)) =
                        self.sub_uid(v, 0, so + 4, "extended negotiation SOP class")
                    {
                        let info: String = v
                            .get(p..)
                            .unwrap_or_default()
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        ui.extended_negotiation
                            .push(ExtendedNegotiation { sop_class, info });
                    }
                }
                0x57 => {
                    if let Some((sop_class, p)) =
                        self.sub_uid(v, 0, so + 4, "common extended negotiation SOP class")
                    {
                        if let Some((service_class, p)) =
                            self.sub_uid(v, p, so + 4, "service class")
                        {
                            let mut related = Vec::new();
                            if let Some(l) = v.get(p..p + 2) {
                                let total = u16::from_be_bytes([l[0], l[1]]) as usize;
                                let list = v
                                    .get(p + 2..p + 2 + total)
                                    .unwrap_or_else(|| v.get(p + 2..).unwrap_or_default());
                                let mut q = 0;
                                while q < list.len() {
                                    match self.sub_uid(
                                        list,
                                        q,
                                        so + 4 + (p + 2) as u64,
                                        "related general SOP class",
                                    ) {
                                        Some((u, next)) => {
                                            related.push(u);
                                            q = next;
                                        }
                                        None => break,
                                    }
                                }
                            }
                            ui.common_extended_negotiation
                                .push(CommonExtendedNegotiation {
                                    sop_class,
                                    service_class,
                                    related_general_sop_classes: related,
                                });
                        }
                    }
                }
                0x58 if request => {
                    if v.len() < 4 {
                        self.note(
                            so,
                            FindingCode::LengthMismatch,
                            Severity::Error,
                            "user identity sub-item shorter than 4 bytes",
                        );
                        continue;
                    }
                    let identity_type = v[0];
                    let primary_len = u16::from_be_bytes([v[2], v[3]]);
                    let primary = v.get(4..4 + primary_len as usize);
                    let secondary_len = v
                        .get(4 + primary_len as usize..6 + primary_len as usize)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                        .unwrap_or(0);
                    if primary.is_none() {
                        self.note(so, FindingCode::LengthMismatch, Severity::Error, format!("user identity primary field declares {primary_len} bytes, more than the sub-item holds"));
                    }
                    let username = match (identity_type, primary) {
                        (1 | 2, Some(p)) => Some(String::from_utf8_lossy(p).into_owned()),
                        _ => None,
                    };
                    ui.user_identity = Some(UserIdentityRequest {
                        identity_type,
                        identity_type_name: user_identity_type_name(identity_type),
                        positive_response_requested: v[1] != 0,
                        username,
                        primary_field_length: primary_len,
                        secondary_field_length: secondary_len,
                    });
                }
                0x59 if !request => {
                    ui.user_identity_response_length = Some(
                        v.get(..2)
                            .map(|b| u16::from_be_bytes([b[0], b[1]]))
                            .unwrap_or(0),
                    );
                }
                t => {
                    let dir = if request {
                        "A-ASSOCIATE-RQ"
                    } else {
                        "A-ASSOCIATE-AC"
                    };
                    let known = matches!(t, 0x58 | 0x59);
                    let msg = if known {
                        format!(
                            "{dir}: user identity sub-item 0x{t:02X} in the wrong PDU, kept and skipped"
                        )
                    } else {
                        format!(
                            "{dir}: unknown user information sub-item 0x{t:02X} ({} bytes) kept and skipped",
                            v.len()
                        )
                    };
                    self.note(so, FindingCode::UnknownItem, Severity::Warning, msg);
                    ui.unknown.push(UnknownItem {
                        item_type: t,
                        length: v.len() as u16,
                        offset: so,
                    });
                }
            }
        }
        if ui.max_length.is_none() {
            self.note(
                offset,
                FindingCode::LengthMismatch,
                Severity::Warning,
                "user information has no maximum length sub-item (mandatory)",
            );
        }
        if ui.implementation_class_uid.is_none() {
            self.note(
                offset,
                FindingCode::LengthMismatch,
                Severity::Warning,
                "user information has no implementation class UID (mandatory)",
            );
        }
        ui
    }

    fn check_contexts(&mut self, ids: impl Iterator<Item = u8>, offset: u64) {
        let mut seen = [false; 256];
        let mut count = 0usize;
        for id in ids {
            count += 1;
            if id % 2 == 0 {
                self.note(
                    offset,
                    FindingCode::BadContextId,
                    Severity::Error,
                    format!("presentation context ID {id} is even (odd 1-255 required)"),
                );
            }
            if seen[id as usize] {
                self.note(
                    offset,
                    FindingCode::DuplicateContextId,
                    Severity::Error,
                    format!("presentation context ID {id} appears more than once"),
                );
            }
            seen[id as usize] = true;
        }
        if count > 128 {
            self.note(
                offset,
                FindingCode::TooManyContexts,
                Severity::Error,
                format!("{count} presentation contexts, at most 128 allowed"),
            );
        }
    }
}
