//! The sans-IO PDU encoder (PS3.8 9.3, Annex D; PS3.7 Annex D), beside the decoders of
//! [`crate::pdu`], [`crate::assoc`] and [`crate::pdata`]: every PDU dicomtap sends is
//! built here, into a caller's buffer, with no I/O.
//!
//! Hand-written rather than a wrapper of dicom-ul's `write_pdu` (which stays a
//! dev-dependency, the reference the tests compare bytes with): dicom-ul cannot express
//! what dicomtap must send — reject and abort codes outside its tables (an access-control
//! denial's reason, a reserved abort source), a rejected context without a transfer
//! syntax, the asynchronous operations window, common extended negotiation, the user
//! identity response, or sub-items of any other type — and it reports I/O errors that
//! cannot happen when writing into memory, while cutting item lengths over 64 KiB
//! silently. Here an item or PDU that cannot hold its value is an [`EncodeError`].

use crate::assoc::{CommonExtendedNegotiation, ProposedContext, RoleSelection};
use crate::pdata::PDV_HEADER_LEN;
use crate::pdu::HEADER_LEN;

/// The DICOM application context name (PS3.7 A.2.1).
pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// A-RELEASE-RQ (PS3.8 9.3.6).
pub const RELEASE_RQ: [u8; 10] = [0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0];
/// A-RELEASE-RP (PS3.8 9.3.7).
pub const RELEASE_RP: [u8; 10] = [0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0];

/// A value too long for the length field that has to hold it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {len} bytes, more than the {max} its length field can hold")]
pub struct EncodeError {
    pub what: &'static str,
    pub len: usize,
    pub max: usize,
}

/// Where PDUs are written: any growable byte buffer (`Vec<u8>`, `bytes::BytesMut`).
/// Nothing is written when encoding fails.
pub trait PduBuf {
    fn put(&mut self, bytes: &[u8]);
}

impl<T: for<'a> Extend<&'a u8>> PduBuf for T {
    fn put(&mut self, bytes: &[u8]) {
        self.extend(bytes);
    }
}

/// An AE title field: 16 bytes, space padded. A longer title is cut to its first 16
/// bytes, which is all a peer compares.
pub fn ae_title(title: &str) -> [u8; 16] {
    let mut f = [b' '; 16];
    for (d, s) in f.iter_mut().zip(title.bytes()) {
        *d = s;
    }
    f
}

/// A-ASSOCIATE-RJ (PS3.8 9.3.4): `result` 1 permanent, 2 transient; `source` 1
/// service-user, 2 service-provider (ACSE), 3 service-provider (presentation); any codes
/// are written as given.
pub fn associate_rj(result: u8, source: u8, reason: u8) -> [u8; 10] {
    [0x03, 0, 0, 0, 0, 4, 0, result, source, reason]
}

/// A-ABORT (PS3.8 9.3.8): `source` 0 service-user, 2 service-provider; any codes are
/// written as given.
pub fn abort(source: u8, reason: u8) -> [u8; 10] {
    [0x07, 0, 0, 0, 0, 4, 0, 0, source, reason]
}

/// Any PDU: type, reserved, 32-bit length, `body` as given (also for PDUs that are wrong
/// on purpose).
pub fn pdu(out: &mut impl PduBuf, pdu_type: u8, body: &[u8]) -> Result<(), EncodeError> {
    let len = u32_len(body.len(), "PDU body")?;
    out.put(&[pdu_type, 0]);
    out.put(&len.to_be_bytes());
    out.put(body);
    Ok(())
}

/// One presentation data value of a P-DATA-TF (PS3.8 9.3.5.1, E.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdv<'a> {
    pub pc_id: u8,
    /// A command set fragment (else a data set fragment).
    pub command: bool,
    /// The last fragment of its command or data set.
    pub last: bool,
    pub data: &'a [u8],
}

impl Pdv<'_> {
    /// The message control header (PS3.8 E.2): bit 0 command, bit 1 last.
    pub fn control(&self) -> u8 {
        control(self.command, self.last)
    }
}

fn control(command: bool, last: bool) -> u8 {
    u8::from(command) | (u8::from(last) << 1)
}

/// A P-DATA-TF holding `pdvs` in order. Their sizes are not checked against a peer's
/// maximum length (see [`fragments`]).
pub fn p_data(out: &mut impl PduBuf, pdvs: &[Pdv<'_>]) -> Result<(), EncodeError> {
    let mut body = 0usize;
    for p in pdvs {
        u32_len(p.data.len().saturating_add(2), "PDV item")?;
        body = body.saturating_add(PDV_HEADER_LEN + p.data.len());
    }
    let body = u32_len(body, "P-DATA-TF body")?;
    out.put(&[0x04, 0]);
    out.put(&body.to_be_bytes());
    for p in pdvs {
        // Checked above.
        let item = (p.data.len() + 2) as u32;
        out.put(&item.to_be_bytes());
        out.put(&[p.pc_id, p.control()]);
        out.put(p.data);
    }
    Ok(())
}

/// The first 12 bytes of a P-DATA-TF holding one PDV of `data_len` bytes: the PDU header
/// and the PDV item header, for writing the data from where it already is.
pub fn p_data_header(
    pc_id: u8,
    command: bool,
    last: bool,
    data_len: usize,
) -> Result<[u8; HEADER_LEN + PDV_HEADER_LEN], EncodeError> {
    let item = u32_len(data_len.saturating_add(2), "PDV item")?;
    let body = u32_len(data_len.saturating_add(PDV_HEADER_LEN), "P-DATA-TF body")?;
    let mut h = [0u8; HEADER_LEN + PDV_HEADER_LEN];
    h[0] = 0x04;
    h[2..6].copy_from_slice(&body.to_be_bytes());
    h[6..10].copy_from_slice(&item.to_be_bytes());
    h[10] = pc_id;
    h[11] = control(command, last);
    Ok(h)
}

/// `data` cut into the PDVs of one command or data set, one per P-DATA-TF of at most
/// `max_length` bytes after its header (the peer's Maximum Length Received, PS3.8
/// D.1; 0 means no limit). Empty data is one empty, last PDV.
pub fn fragments(pc_id: u8, command: bool, data: &[u8], max_length: u32) -> Fragments<'_> {
    let chunk = match max_length {
        0 => usize::MAX,
        m => (m as usize).saturating_sub(PDV_HEADER_LEN).max(1),
    };
    Fragments {
        pc_id,
        command,
        rest: Some(data),
        chunk,
    }
}

/// Iterator of [`fragments`].
#[derive(Debug, Clone)]
pub struct Fragments<'a> {
    pc_id: u8,
    command: bool,
    rest: Option<&'a [u8]>,
    chunk: usize,
}

impl<'a> Iterator for Fragments<'a> {
    type Item = Pdv<'a>;

    fn next(&mut self) -> Option<Pdv<'a>> {
        let rest = self.rest.take()?;
        let (data, tail) = rest.split_at(rest.len().min(self.chunk));
        let last = tail.is_empty();
        if !last {
            self.rest = Some(tail);
        }
        Some(Pdv {
            pc_id: self.pc_id,
            command: self.command,
            last,
            data,
        })
    }
}

/// SOP Class Extended Negotiation sub-item (0x56) to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedNegotiationItem {
    pub sop_class: String,
    /// Service-class application information (PS3.4).
    pub info: Vec<u8>,
}

/// User Identity Negotiation request sub-item (0x58, PS3.7 D.3.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT.
    pub identity_type: u8,
    pub positive_response_requested: bool,
    pub primary: Vec<u8>,
    /// The passcode (type 2); empty otherwise.
    pub secondary: Vec<u8>,
}

/// A sub-item written as given, for what has no field here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    pub item_type: u8,
    pub value: Vec<u8>,
}

/// The User Information item (0x50). Sub-items are written in the order of their types
/// (0x51 to 0x59), then `other`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// Maximum Length Received (0x51); 0 means no limit.
    pub max_length: Option<u32>,
    pub implementation_class_uid: Option<String>,
    /// Asynchronous Operations Window (0x53): invoked, performed.
    pub async_window: Option<(u16, u16)>,
    pub role_selections: Vec<RoleSelection>,
    pub implementation_version_name: Option<String>,
    pub extended_negotiation: Vec<ExtendedNegotiationItem>,
    pub common_extended_negotiation: Vec<CommonExtendedNegotiation>,
    /// Only in an A-ASSOCIATE-RQ.
    pub user_identity: Option<UserIdentity>,
    /// The server response (0x59), only in an A-ASSOCIATE-AC.
    pub user_identity_response: Option<Vec<u8>>,
    pub other: Vec<RawItem>,
}

/// A-ASSOCIATE-RQ (PS3.8 9.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateRq {
    pub protocol_version: u16,
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: String,
    /// Written in order, with their IDs as given.
    pub contexts: Vec<ProposedContext>,
    pub user_info: UserInfo,
}

impl AssociateRq {
    /// Protocol version 1, the DICOM application context, no contexts, empty user
    /// information.
    pub fn new(calling_ae: &str, called_ae: &str) -> Self {
        AssociateRq {
            protocol_version: 1,
            called_ae: called_ae.to_string(),
            calling_ae: calling_ae.to_string(),
            application_context: APPLICATION_CONTEXT.to_string(),
            contexts: Vec::new(),
            user_info: UserInfo::default(),
        }
    }

    pub fn encode(&self, out: &mut impl PduBuf) -> Result<(), EncodeError> {
        let w = Writer::with_capacity(256 + self.contexts.len() * 64);
        w.association(
            0x01,
            (self.protocol_version, &self.called_ae, &self.calling_ae),
            &self.application_context,
            |w| {
                for pc in &self.contexts {
                    w.item(0x20, |w| {
                        w.put(&[pc.id, 0, 0, 0]);
                        w.item(0x30, |w| w.uid(&pc.abstract_syntax));
                        for ts in &pc.transfer_syntaxes {
                            w.item(0x40, |w| w.uid(ts));
                        }
                    });
                }
            },
            &self.user_info,
            out,
        )
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// A presentation context result to send (item 0x21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextAnswer {
    pub id: u8,
    /// 0 acceptance, 1 user-rejection, 2 no-reason, 3 abstract syntax not supported,
    /// 4 transfer syntaxes not supported (PS3.8 Table 9-18).
    pub result: u8,
    /// `None` leaves the transfer syntax sub-item out (tolerated for a rejection).
    pub transfer_syntax: Option<String>,
}

/// A-ASSOCIATE-AC (PS3.8 9.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateAc {
    pub protocol_version: u16,
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: String,
    pub results: Vec<ContextAnswer>,
    pub user_info: UserInfo,
}

impl AssociateAc {
    /// An answer to `rq` echoing its AE titles, protocol version 1 and the DICOM
    /// application context; no results, empty user information.
    pub fn answering(rq: &crate::assoc::AssociateRequest) -> Self {
        AssociateAc {
            protocol_version: 1,
            called_ae: rq.called_ae.clone(),
            calling_ae: rq.calling_ae.clone(),
            application_context: APPLICATION_CONTEXT.to_string(),
            results: Vec::new(),
            user_info: UserInfo::default(),
        }
    }

    pub fn encode(&self, out: &mut impl PduBuf) -> Result<(), EncodeError> {
        let w = Writer::with_capacity(256 + self.results.len() * 32);
        w.association(
            0x02,
            (self.protocol_version, &self.called_ae, &self.calling_ae),
            &self.application_context,
            |w| {
                for r in &self.results {
                    w.item(0x21, |w| {
                        w.put(&[r.id, 0, r.result, 0]);
                        if let Some(ts) = &r.transfer_syntax {
                            w.item(0x40, |w| w.uid(ts));
                        }
                    });
                }
            },
            &self.user_info,
            out,
        )
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

fn u32_len(len: usize, what: &'static str) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError {
        what,
        len,
        max: u32::MAX as usize,
    })
}

/// Builds an association PDU body in memory (they are small), filling in each item's
/// length when it closes; the first length that overflows is kept as the error.
struct Writer {
    buf: Vec<u8>,
    error: Option<EncodeError>,
}

impl Writer {
    fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
            error: None,
        }
    }

    fn put(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn fail(&mut self, what: &'static str, len: usize, max: usize) {
        self.error.get_or_insert(EncodeError { what, len, max });
    }

    /// An A-ASSOCIATE-RQ or -AC: the fixed part (version, called and calling AE), the
    /// application context, what `contexts` writes, the user information.
    fn association(
        mut self,
        pdu_type: u8,
        (version, called, calling): (u16, &str, &str),
        application_context: &str,
        contexts: impl FnOnce(&mut Writer),
        ui: &UserInfo,
        out: &mut impl PduBuf,
    ) -> Result<(), EncodeError> {
        self.put(&version.to_be_bytes());
        self.put(&[0, 0]);
        self.put(&ae_title(called));
        self.put(&ae_title(calling));
        self.put(&[0; 32]);
        self.item(0x10, |w| w.uid(application_context));
        contexts(&mut self);
        self.item(0x50, |w| w.user_info(ui));
        if let Some(e) = self.error {
            return Err(e);
        }
        pdu(out, pdu_type, &self.buf)
    }

    /// An item or sub-item: type, reserved, 16-bit length, what `value` writes.
    fn item(&mut self, item_type: u8, value: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.put(&[item_type, 0, 0, 0]);
        value(self);
        let len = self.buf.len() - start - 4;
        match u16::try_from(len) {
            Ok(l) => self.buf[start + 2..start + 4].copy_from_slice(&l.to_be_bytes()),
            Err(_) => self.fail(item_name(item_type), len, u16::MAX as usize),
        }
    }

    fn uid(&mut self, value: &str) {
        self.put(value.as_bytes());
    }

    /// A value with its 16-bit length in front, as inside user information sub-items.
    fn sized(&mut self, value: &[u8], what: &'static str) {
        self.sized_with(what, |w| w.put(value));
    }

    fn sized_with(&mut self, what: &'static str, value: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.put(&[0, 0]);
        value(self);
        let len = self.buf.len() - start - 2;
        match u16::try_from(len) {
            Ok(l) => self.buf[start..start + 2].copy_from_slice(&l.to_be_bytes()),
            Err(_) => self.fail(what, len, u16::MAX as usize),
        }
    }

    fn user_info(&mut self, ui: &UserInfo) {
        if let Some(m) = ui.max_length {
            self.item(0x51, |w| w.put(&m.to_be_bytes()));
        }
        if let Some(u) = &ui.implementation_class_uid {
            self.item(0x52, |w| w.uid(u));
        }
        if let Some((invoked, performed)) = ui.async_window {
            self.item(0x53, |w| {
                w.put(&invoked.to_be_bytes());
                w.put(&performed.to_be_bytes());
            });
        }
        for r in &ui.role_selections {
            self.item(0x54, |w| {
                w.sized(r.sop_class.as_bytes(), "role selection SOP class");
                w.put(&[u8::from(r.scu), u8::from(r.scp)]);
            });
        }
        if let Some(v) = &ui.implementation_version_name {
            self.item(0x55, |w| w.put(v.as_bytes()));
        }
        for e in &ui.extended_negotiation {
            self.item(0x56, |w| {
                w.sized(e.sop_class.as_bytes(), "extended negotiation SOP class");
                w.put(&e.info);
            });
        }
        for c in &ui.common_extended_negotiation {
            self.item(0x57, |w| {
                w.sized(
                    c.sop_class.as_bytes(),
                    "common extended negotiation SOP class",
                );
                w.sized(c.service_class.as_bytes(), "service class");
                w.sized_with("related general SOP classes", |w| {
                    for r in &c.related_general_sop_classes {
                        w.sized(r.as_bytes(), "related general SOP class");
                    }
                });
            });
        }
        if let Some(id) = &ui.user_identity {
            self.item(0x58, |w| {
                w.put(&[id.identity_type, u8::from(id.positive_response_requested)]);
                w.sized(&id.primary, "user identity primary field");
                w.sized(&id.secondary, "user identity secondary field");
            });
        }
        if let Some(r) = &ui.user_identity_response {
            self.item(0x59, |w| w.sized(r, "user identity server response"));
        }
        for o in &ui.other {
            self.item(o.item_type, |w| w.put(&o.value));
        }
    }
}

fn item_name(item_type: u8) -> &'static str {
    match item_type {
        0x10 => "application context item",
        0x20 => "presentation context item",
        0x21 => "presentation context result item",
        0x30 => "abstract syntax sub-item",
        0x40 => "transfer syntax sub-item",
        0x50 => "user information item",
        0x51..=0x59 => "user information sub-item",
        _ => "item",
    }
}
