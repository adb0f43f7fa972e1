//! The typed model of a device statement (`shared/statement-format.md`, schema
//! `dicomtap-statement/1`): what the loader produces and what the conformance rules, the
//! diff and the inference read.
//!
//! Everything here is already validated: UIDs are resolved (keywords turned into UIDs,
//! each UID known to the registry or declared under `[private_uids]`), statuses parsed,
//! roles and enumerations typed. Code that builds a statement by hand (inference, import,
//! tests) should write it out ([`crate::statement::write::to_toml`]) and load it again
//! ([`crate::statement::parse`]), so the same rules hold.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

/// The schema identifier every statement file must carry (`schema = "..."`).
pub const SCHEMA: &str = "dicomtap-statement/1";

/// One device statement: one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// The file it was loaded from (`None` when built in memory).
    pub path: Option<PathBuf>,
    /// `[device]`: Annex H dicomDevice, PS3.2 cover page.
    pub device: Device,
    /// 1-based line of the `[device]` header (0 when built in memory).
    pub device_line: usize,
    /// `[[ae]]`: Annex H dicomNetworkAE, PS3.2 AE specifications.
    pub ae: Vec<Ae>,
    /// `[private_uids]`: UIDs outside the registry the device documents (private transfer
    /// syntaxes or SOP classes), by UID.
    pub private_uids: BTreeMap<String, PrivateUid>,
    // `[x]` is free for local use and deliberately not kept.
}

/// `[device]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Required; unique among the statements loaded together.
    pub name: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub software_versions: Vec<String>,
    /// The document the claims come from (title, revision, date), or the sources used.
    pub document: Option<String>,
}

/// An entry of `[private_uids]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivateUid {
    /// Must be `true` in the file (the flag makes the intent explicit).
    pub private: bool,
    /// Human-readable name, e.g. "ACME fast".
    pub name: Option<String>,
}

/// A UID as a statement claims it: resolved from a keyword or written as a UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UidRef {
    /// The UID (e.g. "1.2.840.10008.5.1.4.1.1.2").
    pub uid: String,
    /// The registry keyword (e.g. "CTImageStorage"); `None` for private UIDs.
    pub keyword: Option<String>,
    /// Declared under `[private_uids]` rather than found in the registry.
    pub private: bool,
}

impl UidRef {
    /// A registry UID (keyword filled in from the registry when known).
    pub fn standard(uid: &str) -> UidRef {
        UidRef {
            uid: uid.to_owned(),
            keyword: dicomtap_wire::uid::keyword(uid).map(str::to_owned),
            private: false,
        }
    }

    /// The keyword if there is one, else the UID: what to print.
    pub fn label(&self) -> &str {
        self.keyword.as_deref().unwrap_or(&self.uid)
    }
}

impl fmt::Display for UidRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// `[[ae]]`: one network application entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ae {
    /// Required; the AE title on the wire (compared without padding).
    pub title: String,
    /// 1-based line of the `[[ae]]` header in the file (0 when built in memory).
    pub line: usize,
    /// Addresses this AE uses, as written (IP addresses or host names).
    pub hosts: Vec<String>,
    /// Where it accepts associations.
    pub port: Option<u16>,
    /// Annex H dicomAssociationInitiator (absent = false).
    pub initiator: bool,
    /// Annex H dicomAssociationAcceptor (absent = false).
    pub acceptor: bool,
    /// Annex H dicomSupportedCharacterSet: Specific Character Set defined terms
    /// ("ISO_IR 100", "ISO 2022 IR 87", ...). Empty = ISO_IR 6 (default repertoire) only.
    pub character_sets: Vec<String>,
    pub implementation_class_uid: Option<String>,
    pub implementation_version_name: Option<String>,
    /// Max Length it advertises in A-ASSOCIATE (0 = unlimited).
    pub max_pdu_receive: Option<u32>,
    /// Largest P-DATA-TF PDU it sends (0 = unlimited).
    pub max_pdu_send: Option<u32>,
    /// Most presentation contexts it proposes or accepts per association.
    pub max_presentation_contexts: Option<u32>,
    /// Simultaneous associations.
    pub max_associations: MaxAssociations,
    /// Asynchronous operations window; `None` = not negotiated (one at a time).
    pub async_window: Option<AsyncWindow>,
    pub timeouts_s: Timeouts,
    /// Calling AE titles it accepts; `None` = any.
    pub accept_calling_ae_titles: Option<Vec<String>>,
    /// User identity types accepted (acceptor) or sent (initiator); empty = none.
    pub user_identity: Vec<UserIdentityType>,
    /// `None` = not stated (assume plain TCP).
    pub tls: Option<Tls>,
    /// Private creator codes of private attributes it writes.
    pub private_creators: Vec<String>,
    /// Statuses it may return, any service; `None` = not stated.
    pub statuses: Option<Vec<StatusRange>>,
    /// `[[ae.capability]]`: transfer capabilities.
    pub capability: Vec<Capability>,
}

/// `max_associations = { initiator = 2, acceptor = 5 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MaxAssociations {
    pub initiator: Option<u32>,
    pub acceptor: Option<u32>,
}

/// `async_window = { invoked = 1, performed = 1 }` (PS3.7 D.3.3.3; 0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AsyncWindow {
    pub invoked: u16,
    pub performed: u16,
}

/// `timeouts_s = { artim = 30, dimse = 60, idle = 300, connect = 10 }`, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timeouts {
    /// ARTIM: waiting for the association request / reply or the TCP close after release.
    pub artim: Option<f64>,
    /// Waiting for a DIMSE response.
    pub dimse: Option<f64>,
    /// Idle association before it is released or aborted.
    pub idle: Option<f64>,
    /// TCP connect.
    pub connect: Option<f64>,
}

/// User Identity types of PS3.7 D.3.3.7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIdentityType {
    /// 1: username.
    Username,
    /// 2: username and passcode.
    UsernamePasscode,
    /// 3: Kerberos service ticket.
    Kerberos,
    /// 4: SAML assertion.
    Saml,
    /// 5: JSON Web Token.
    Jwt,
}

impl UserIdentityType {
    /// All types, in wire-code order.
    pub const ALL: [UserIdentityType; 5] = [
        UserIdentityType::Username,
        UserIdentityType::UsernamePasscode,
        UserIdentityType::Kerberos,
        UserIdentityType::Saml,
        UserIdentityType::Jwt,
    ];

    /// The spelling in statement files.
    pub fn as_str(self) -> &'static str {
        match self {
            UserIdentityType::Username => "username",
            UserIdentityType::UsernamePasscode => "username_passcode",
            UserIdentityType::Kerberos => "kerberos",
            UserIdentityType::Saml => "saml",
            UserIdentityType::Jwt => "jwt",
        }
    }

    /// The User-Identity-Type byte of the 0x58 sub-item.
    pub fn code(self) -> u8 {
        match self {
            UserIdentityType::Username => 1,
            UserIdentityType::UsernamePasscode => 2,
            UserIdentityType::Kerberos => 3,
            UserIdentityType::Saml => 4,
            UserIdentityType::Jwt => 5,
        }
    }

    /// From the wire code.
    pub fn from_code(code: u8) -> Option<UserIdentityType> {
        UserIdentityType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// From the spelling in statement files.
    pub fn parse(s: &str) -> Option<UserIdentityType> {
        UserIdentityType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `tls = { required = false, versions = ["1.2", "1.3"], client_auth = "optional" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tls {
    /// Only TLS connections are accepted / made.
    pub required: bool,
    /// "1.0" | "1.1" | "1.2" | "1.3".
    pub versions: Vec<String>,
    pub client_auth: Option<ClientAuth>,
}

/// Whether the TLS server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    None,
    Optional,
    Required,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// SCU or SCP (a capability in both roles is two entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Role {
    #[serde(rename = "SCU")]
    Scu,
    #[serde(rename = "SCP")]
    Scp,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Scu => "SCU",
            Role::Scp => "SCP",
        }
    }

    /// The complementary role.
    pub fn peer(self) -> Role {
        match self {
            Role::Scu => Role::Scp,
            Role::Scp => Role::Scu,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive range of DIMSE status codes: `"0000"` is `{lo: 0, hi: 0}`,
/// `"A700-A7FF"` is `{lo: 0xA700, hi: 0xA7FF}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    /// A single code.
    pub fn single(code: u16) -> StatusRange {
        StatusRange { lo: code, hi: code }
    }

    pub fn contains(&self, code: u16) -> bool {
        self.lo <= code && code <= self.hi
    }

    /// Parses `"0000"` or `"A700-A7FF"` (4 hex digits each, either case, lo <= hi).
    pub fn parse(s: &str) -> Option<StatusRange> {
        fn code(s: &str) -> Option<u16> {
            let s = s.trim();
            if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u16::from_str_radix(s, 16).ok()
        }
        let r = match s.split_once('-') {
            Some((a, b)) => StatusRange {
                lo: code(a)?,
                hi: code(b)?,
            },
            None => StatusRange::single(code(s)?),
        };
        (r.lo <= r.hi).then_some(r)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{:04X}", self.lo)
        } else {
            write!(f, "{:04X}-{:04X}", self.lo, self.hi)
        }
    }
}

/// Whether any range of a list contains `code`.
pub fn statuses_contain(list: &[StatusRange], code: u16) -> bool {
    list.iter().any(|r| r.contains(code))
}

/// `[[ae.capability]]`: Annex H dicomTransferCapability, one row of a PS3.2 presentation
/// context table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capability {
    /// 1-based line of the `[[ae.capability]]` header (0 when built in memory).
    pub line: usize,
    /// The abstract syntax (SOP class or meta SOP class).
    pub sop_class: UidRef,
    pub role: Role,
    /// Transfer syntaxes it proposes (SCU) or accepts (SCP), in the order written.
    pub transfer_syntaxes: Vec<UidRef>,
    /// SCP: its choice order when several are proposed (each one also in
    /// `transfer_syntaxes`). Empty = not stated.
    pub preferred_transfer_syntaxes: Vec<UidRef>,
    /// SCP/SCU role selection (item 0x54) it negotiates for this SOP class; `None` = none.
    pub role_selection: Option<RoleSelection>,
    /// SOP class extended negotiation (item 0x56); `None` = none.
    pub extended_negotiation: Option<ExtendedNegotiation>,
    /// SOP class common extended negotiation (item 0x57) an SCU sends for this SOP
    /// class; `None` = none.
    pub common_extended_negotiation: Option<CommonExtendedNegotiation>,
    /// Narrows the AE-level list for this SOP class; `None` = the AE list applies.
    pub statuses: Option<Vec<StatusRange>>,
    /// Storage Commitment Push Model behaviour.
    pub storage_commitment: Option<StorageCommitment>,
}

impl Capability {
    /// Whether the capability lists `ts` (a UID).
    pub fn has_transfer_syntax(&self, ts: &str) -> bool {
        self.transfer_syntaxes.iter().any(|t| t.uid == ts)
    }

    /// The transfer syntaxes in the SCP's choice order: the preferred ones first, then the
    /// rest in the order written.
    pub fn choice_order(&self) -> Vec<&UidRef> {
        let mut out: Vec<&UidRef> = self.preferred_transfer_syntaxes.iter().collect();
        for t in &self.transfer_syntaxes {
            if !out.iter().any(|o| o.uid == t.uid) {
                out.push(t);
            }
        }
        out
    }
}

/// `role_selection = { scu = true, scp = false }`: the SCU-role and SCP-role fields of
/// the 0x54 sub-item this AE proposes (initiator) or accepts (acceptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoleSelection {
    pub scu: bool,
    pub scp: bool,
}

/// `extended_negotiation = { storage = {...} | find = {...} | retrieve = {...} }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExtendedNegotiation {
    pub storage: Option<StorageExtNeg>,
    pub find: Option<FindExtNeg>,
    pub retrieve: Option<RetrieveExtNeg>,
}

/// `common_extended_negotiation = { service_class = "1.2.840.10008.4.2",
/// related_general_sop_classes = [...] }`: the SOP Class Common Extended Negotiation
/// sub-item (0x57, PS3.7 D.3.3.6) the association requestor sends for the SOP class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommonExtendedNegotiation {
    /// The service class UID (e.g. 1.2.840.10008.4.2, Storage Service Class).
    pub service_class: String,
    /// Related general SOP classes, in the order written; empty = none sent.
    pub related_general_sop_classes: Vec<UidRef>,
}

/// Storage SOP classes (PS3.4 B.3.1): level of support 0-3, digital signature 0-2,
/// element coercion 0-2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StorageExtNeg {
    pub level_of_support: Option<u8>,
    pub digital_signature: Option<u8>,
    pub element_coercion: Option<u8>,
}

/// Query/Retrieve C-FIND (PS3.4 C.5.1.1): each flag supported or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FindExtNeg {
    pub relational: Option<bool>,
    pub combined_date_time: Option<bool>,
    pub fuzzy_person_name: Option<bool>,
    pub timezone_adjust: Option<bool>,
}

/// Query/Retrieve C-MOVE / C-GET (PS3.4 C.5.1.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetrieveExtNeg {
    pub relational: Option<bool>,
}

/// `storage_commitment = { report_on = [...], max_wait_s = 3600 }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageCommitment {
    /// Where the N-EVENT-REPORT may come (SCP: where it sends it; SCU: where it accepts it).
    pub report_on: Vec<ReportOn>,
    /// Longest time between the N-ACTION and the report.
    pub max_wait_s: Option<f64>,
}

/// Which association carries the storage commitment N-EVENT-REPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOn {
    SameAssociation,
    NewAssociation,
}

impl ReportOn {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportOn::SameAssociation => "same_association",
            ReportOn::NewAssociation => "new_association",
        }
    }
}

/// Compares AE titles as they appear on the wire: leading and trailing spaces (and NULs)
/// are padding (PS3.8 9.3.2: trailing spaces; leading ones are not significant either).
pub fn ae_title_eq(a: &str, b: &str) -> bool {
    let t = |s: &str| s.trim_matches(|c: char| c == ' ' || c == '\0').to_owned();
    t(a) == t(b)
}

impl Statement {
    /// The AE with this title (padding ignored).
    pub fn ae(&self, title: &str) -> Option<&Ae> {
        self.ae.iter().find(|a| ae_title_eq(&a.title, title))
    }

    /// The AE with this title that also matches the address, if the AE lists `hosts`
    /// (an AE without `hosts` matches any address; a host name never matches an IP).
    pub fn ae_at(&self, title: &str, addr: Option<IpAddr>) -> Option<&Ae> {
        self.ae
            .iter()
            .find(|a| ae_title_eq(&a.title, title) && a.matches_host(addr))
    }

    /// Whether `uid` is declared under `[private_uids]`.
    pub fn is_private_uid(&self, uid: &str) -> bool {
        self.private_uids.contains_key(uid)
    }

    /// The file name (or the device name) for messages.
    pub fn origin(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => self.device.name.clone(),
        }
    }
}

/// Finds the statement and AE a wire AE title (and optionally an address) belongs to.
/// Title and address matches win over title-only matches of AEs without `hosts`.
pub fn find_ae<'a>(
    statements: &'a [Statement],
    title: &str,
    addr: Option<IpAddr>,
) -> Option<(&'a Statement, &'a Ae)> {
    let mut fallback = None;
    for s in statements {
        for a in &s.ae {
            if !ae_title_eq(&a.title, title) {
                continue;
            }
            if a.hosts.is_empty() {
                fallback.get_or_insert((s, a));
            } else if a.matches_host(addr) {
                return Some((s, a));
            }
        }
    }
    fallback
}

impl Ae {
    /// Whether `addr` is one of `hosts` (true when `hosts` is empty or `addr` unknown).
    pub fn matches_host(&self, addr: Option<IpAddr>) -> bool {
        match addr {
            None => true,
            Some(_) if self.hosts.is_empty() => true,
            Some(ip) => self
                .hosts
                .iter()
                .any(|h| h.parse::<IpAddr>().is_ok_and(|h| h == ip)),
        }
    }

    /// The capabilities for a SOP class UID in a role (duplicates are rejected by the
    /// loader, so at most one).
    pub fn capabilities_for<'a>(
        &'a self,
        sop_class_uid: &'a str,
        role: Role,
    ) -> impl Iterator<Item = &'a Capability> + 'a {
        self.capability
            .iter()
            .filter(move |c| c.role == role && c.sop_class.uid == sop_class_uid)
    }

    /// The capability for a SOP class UID in a role.
    pub fn capability(&self, sop_class_uid: &str, role: Role) -> Option<&Capability> {
        self.capability
            .iter()
            .find(|c| c.role == role && c.sop_class.uid == sop_class_uid)
    }

    /// Whether the AE claims the SOP class in any role.
    pub fn claims_sop_class(&self, sop_class_uid: &str) -> bool {
        self.capability
            .iter()
            .any(|c| c.sop_class.uid == sop_class_uid)
    }

    /// The status list that applies to a SOP class: the union of the lists of its
    /// capabilities (either role) when any has one, else the AE-level list; `None` when
    /// the statement states none.
    pub fn statuses_for(&self, sop_class_uid: &str) -> Option<Vec<StatusRange>> {
        let mut narrowed: Option<Vec<StatusRange>> = None;
        for c in self
            .capability
            .iter()
            .filter(|c| c.sop_class.uid == sop_class_uid)
        {
            if let Some(list) = &c.statuses {
                narrowed
                    .get_or_insert_with(Vec::new)
                    .extend(list.iter().copied());
            }
        }
        narrowed.or_else(|| self.statuses.clone())
    }

    /// Whether the statement allows this AE to return `code` for `sop_class_uid`
    /// (see [`Ae::statuses_for`]): `Some(true|false)`, or `None` when it lists no statuses
    /// at all (no claim to check).
    pub fn allows_status(&self, code: u16, sop_class_uid: &str) -> Option<bool> {
        self.statuses_for(sop_class_uid)
            .map(|list| statuses_contain(&list, code))
    }

    /// Whether the capability for (SOP class, role) lists the transfer syntax `ts`:
    /// `None` when there is no such capability (the SOP class/role claim itself fails).
    pub fn claims_transfer_syntax(
        &self,
        sop_class_uid: &str,
        role: Role,
        ts: &str,
    ) -> Option<bool> {
        self.capability(sop_class_uid, role)
            .map(|c| c.has_transfer_syntax(ts))
    }

    /// Whether the AE accepts associations from `calling` (no allow-list = any).
    pub fn accepts_calling(&self, calling: &str) -> bool {
        self.accept_calling_ae_titles
            .as_ref()
            .is_none_or(|l| l.iter().any(|t| ae_title_eq(t, calling)))
    }

    /// The declared character sets, or the default repertoire when none are declared.
    pub fn effective_character_sets(&self) -> Vec<String> {
        if self.character_sets.is_empty() {
            vec!["ISO_IR 6".to_owned()]
        } else {
            self.character_sets.clone()
        }
    }

    /// Whether TLS is required by this AE.
    pub fn tls_required(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.required)
    }
}

// ---------------------------------------------------------------------------------------
// In words, for findings and diffs (never Rust debug output).

impl std::fmt::Display for RoleSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "no" };
        write!(f, "SCU role {}, SCP role {}", yn(self.scu), yn(self.scp))
    }
}

impl std::fmt::Display for AsyncWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: u16| {
            if v == 0 {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        write!(
            f,
            "invoked {}, performed {}",
            n(self.invoked),
            n(self.performed)
        )
    }
}

impl std::fmt::Display for ExtendedNegotiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let mut field = |group: &str, name: &str, v: Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{group} {name} = {v}"));
            }
        };
        let num = |v: Option<u8>| v.map(|v| v.to_string());
        let flag = |v: Option<bool>| v.map(|v| v.to_string());
        if let Some(s) = &self.storage {
            field("storage", "level_of_support", num(s.level_of_support));
            field("storage", "digital_signature", num(s.digital_signature));
            field("storage", "element_coercion", num(s.element_coercion));
        }
        if let Some(q) = &self.find {
            field("find", "relational", flag(q.relational));
            field("find", "combined_date_time", flag(q.combined_date_time));
            field("find", "fuzzy_person_name", flag(q.fuzzy_person_name));
            field("find", "timezone_adjust", flag(q.timezone_adjust));
        }
        if let Some(r) = &self.retrieve {
            field("retrieve", "relational", flag(r.relational));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// An optional claim in words: its value, or "none".
pub fn or_none<T: std::fmt::Display>(v: Option<&T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(StatusRange::parse("0000"), Some(StatusRange::single(0)));
        let r = StatusRange::parse("a700-A7FF");
        assert_eq!(
            r,
            Some(StatusRange {
                lo: 0xA700,
                hi: 0xA7FF
            })
        );
        assert!(r.is_some_and(|r| r.contains(0xA7FE) && !r.contains(0xA800)));
        assert_eq!(StatusRange::parse("A7FF-A700"), None);
        assert_eq!(StatusRange::parse("A70"), None);
        assert_eq!(StatusRange::parse("0x00"), None);
        assert_eq!(
            StatusRange {
                lo: 0xC000,
                hi: 0xCFFF
            }
            .to_string(),
            "C000-CFFF"
        );
    }

    #[test]
    fn titles_ignore_padding() {
        assert!(ae_title_eq("STORESCP        ", "STORESCP"));
        assert!(!ae_title_eq("STORESCP", "STORESCU"));
    }
}
