#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Conformance rules on synthetic event sequences: each rule the real-peer tests
//! (tests/conformance_*.rs) cannot easily provoke is driven here with hand-built
//! engine events, and conforming sequences must raise nothing.

use std::net::SocketAddr;
use std::path::Path;

use dicomtap_analyzer::capture::{ConnId, ConnectionInfo, RequestorBy};
use dicomtap_analyzer::conformance::{Checker, CheckerConfig, ConformanceFinding};
use dicomtap_analyzer::session::SessionBuilder;
use dicomtap_analyzer::statement;
use dicomtap_wire::assoc::{
    Abort, AssociateAccept, AssociateReject, AssociateRequest, CommonExtendedNegotiation,
    ContextResult, ExtendedNegotiation, ProposedContext, RoleSelection, UserIdentityRequest,
    UserInformation,
};
use dicomtap_wire::dimse::{Command, field};
use dicomtap_wire::event::{CommandEvent, DataFragment, DatasetPeekEvent, PDataSummary};
use dicomtap_wire::peek::{DatasetPeek, InvalidText, PrivateCreator};
use dicomtap_wire::syntax::Encoding;
use dicomtap_wire::{Event, EventKind, Side, StreamEnd};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const IMPLICIT: &str = "1.2.840.10008.1.2";
const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const J2K: &str = "1.2.840.10008.1.2.4.90";
const COMMIT: &str = "1.2.840.10008.1.20.1";

const MODALITY: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "CT_DEVICE"
[[ae]]
title = "CT9000"
hosts = ["10.0.0.5"]
initiator = true
character_sets = ["ISO_IR 100"]
implementation_class_uid = "1.2.3.4.5.6"
implementation_version_name = "CT9000_52"
max_pdu_receive = 16384
max_pdu_send = 16384
max_presentation_contexts = 2
max_associations = { initiator = 1 }
timeouts_s = { artim = 30, dimse = 60, idle = 10 }
user_identity = ["username"]
private_creators = ["ACME CT 1.0"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCU"
transfer_syntaxes = ["JPEG2000Lossless", "ExplicitVRLittleEndian", "ImplicitVRLittleEndian"]
extended_negotiation = { storage = { level_of_support = 2, digital_signature = 0, element_coercion = 0 } }
[[ae.capability]]
sop_class = "StorageCommitmentPushModel"
role = "SCU"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
"#;

const PACS: &str = r#"
schema = "dicomtap-statement/1"
[device]
name = "PACS_DEVICE"
[[ae]]
title = "PACS"
port = 104
acceptor = true
initiator = true
max_pdu_receive = 32768
max_presentation_contexts = 4
max_associations = { acceptor = 2 }
accept_calling_ae_titles = ["CT9000"]
statuses = ["0000", "A700-A7FF"]
[[ae.capability]]
sop_class = "CTImageStorage"
role = "SCP"
transfer_syntaxes = ["JPEG2000Lossless", "ExplicitVRLittleEndian", "ImplicitVRLittleEndian"]
preferred_transfer_syntaxes = ["JPEG2000Lossless"]
[[ae.capability]]
sop_class = "StorageCommitmentPushModel"
role = "SCP"
transfer_syntaxes = ["ImplicitVRLittleEndian"]
storage_commitment = { report_on = ["same_association"], max_wait_s = 60 }
"#;

struct H {
    checker: Checker,
    conn: ConnectionInfo,
    ts: u64,
    findings: Vec<ConformanceFinding>,
}

const T0: u64 = 1_700_000_000_000_000;

impl H {
    fn new(statements: &[&str]) -> H {
        let st = statements
            .iter()
            .enumerate()
            .map(|(i, t)| {
                statement::parse(t, Path::new(&format!("s{i}.toml")))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        H::with(Checker::new(st))
    }

    /// The CT modality and the PACS of [`MODALITY`] and [`PACS`], checked with `cfg`.
    fn modality_and_pacs(cfg: CheckerConfig) -> H {
        let st = vec![
            statement::parse(MODALITY, Path::new("m.toml")).unwrap(),
            statement::parse(PACS, Path::new("p.toml")).unwrap(),
        ];
        H::with(Checker::with_config(st, cfg))
    }

    fn with(checker: Checker) -> H {
        H {
            checker,
            conn: conn(0, "10.0.0.5:40000", "10.0.0.9:104"),
            ts: T0,
            findings: Vec::new(),
        }
    }

    fn at(&mut self, secs: f64) -> &mut Self {
        self.ts = T0 + (secs * 1e6) as u64;
        self
    }

    fn on(&mut self, id: u64, client: &str, server: &str) -> &mut Self {
        self.conn = conn(id, client, server);
        self
    }

    fn ev(&mut self, from: Side, kind: EventKind) -> &mut Self {
        let e = Event {
            ts_us: self.ts,
            from,
            offset: 0,
            kind,
        };
        self.checker.observe(&self.conn, &e);
        self.findings.extend(self.checker.drain());
        self
    }

    fn end(&mut self) -> &mut Self {
        let s = SessionBuilder::new(self.conn.id.0, None, None).finish();
        self.checker.end_association(&self.conn, &s);
        self.findings.extend(self.checker.drain());
        self
    }

    fn finish(&mut self) -> &mut Self {
        self.checker.finish();
        self.findings.extend(self.checker.drain());
        self
    }

    fn rq(
        &mut self,
        calling: &str,
        called: &str,
        contexts: &[(u8, &str, &[&str])],
        ui: UserInformation,
    ) -> &mut Self {
        let rq = AssociateRequest {
            protocol_version: 1,
            called_ae: called.into(),
            calling_ae: calling.into(),
            application_context: Some("1.2.840.10008.3.1.1.1".into()),
            contexts: contexts
                .iter()
                .map(|(id, a, ts)| ProposedContext {
                    id: *id,
                    abstract_syntax: (*a).into(),
                    transfer_syntaxes: ts.iter().map(|t| t.to_string()).collect(),
                })
                .collect(),
            user_info: ui,
            unknown: Vec::new(),
        };
        self.ev(Side::Requestor, EventKind::AssociateRq(rq))
    }

    fn ac(&mut self, results: &[(u8, u8, Option<&str>)], ui: UserInformation) -> &mut Self {
        let ac = AssociateAccept {
            protocol_version: 1,
            called_ae: String::new(),
            calling_ae: String::new(),
            application_context: None,
            results: results
                .iter()
                .map(|(id, r, ts)| ContextResult {
                    id: *id,
                    result: *r,
                    result_name: dicomtap_wire::assoc::context_result_name(*r),
                    transfer_syntax: ts.map(str::to_string),
                })
                .collect(),
            user_info: ui,
            unknown: Vec::new(),
        };
        self.ev(Side::Acceptor, EventKind::AssociateAc(ac))
    }

    fn rj(&mut self, source: u8, reason: u8) -> &mut Self {
        let rj = AssociateReject {
            result: 1,
            source,
            reason,
            description: format!("source {source} reason {reason}"),
        };
        self.ev(Side::Acceptor, EventKind::AssociateRj(rj))
    }

    fn command(&mut self, from: Side, pc_id: u8, cmd: Command) -> &mut Self {
        let ce = CommandEvent {
            pc_id,
            abstract_syntax: None,
            command: cmd,
            latency_us: None,
        };
        self.ev(from, EventKind::Command(ce))
    }

    fn data(&mut self, from: Side, pc_id: u8, bytes: Vec<u8>) -> &mut Self {
        self.ev(
            from,
            EventKind::DataFragment(DataFragment {
                pc_id,
                bytes,
                last: false,
            }),
        );
        self.ev(
            from,
            EventKind::DataFragment(DataFragment {
                pc_id,
                bytes: Vec::new(),
                last: true,
            }),
        )
    }

    /// A conforming CT9000 -> PACS association up to the A-ASSOCIATE-AC.
    fn good_assoc(&mut self) -> &mut Self {
        self.rq(
            "CT9000",
            "PACS",
            &[(1, CT, &[J2K, EXPLICIT]), (3, COMMIT, &[IMPLICIT])],
            ui_modality(),
        )
        .ac(&[(1, 0, Some(J2K)), (3, 0, Some(IMPLICIT))], ui_pacs())
    }

    /// CT9000 stores `inst` with C-STORE message 1 on context 1, answered Success.
    fn stored(&mut self, inst: &str) -> &mut Self {
        self.command(Side::Requestor, 1, store_rq(1, inst)).command(
            Side::Acceptor,
            1,
            rsp(field::C_STORE_RSP, 1, 0, CT, Some(inst)),
        )
    }

    /// CT9000 requests the commitment of `ok` (transaction `txn`) with N-ACTION message
    /// `id` on context 3.
    fn commitment_requested(&mut self, id: u16, txn: &str, ok: &[&str]) -> &mut Self {
        self.command(Side::Requestor, 3, n_action(id)).data(
            Side::Requestor,
            3,
            commit_ds(txn, ok, &[]),
        )
    }

    /// The PACS opens association `id` to CT9000 at `secs` for its commitment reports.
    fn report_association(&mut self, id: u64, secs: f64) -> &mut Self {
        self.on(id, "10.0.0.9:6000", "10.0.0.5:104")
            .at(secs)
            .rq(
                "PACS",
                "CT9000",
                &[(1, COMMIT, &[IMPLICIT])],
                UserInformation::default(),
            )
            .ac(&[(1, 0, Some(IMPLICIT))], UserInformation::default())
    }

    /// The requestor sends N-EVENT-REPORT message 1 of `event_type` on context 1 for
    /// transaction `txn`, `ok` committed and `failed` not.
    fn reported(&mut self, event_type: u16, txn: &str, ok: &[&str], failed: &[&str]) -> &mut Self {
        self.command(Side::Requestor, 1, n_event_report(1, event_type))
            .data(Side::Requestor, 1, commit_ds(txn, ok, failed))
    }

    /// Whether any finding of `rule` was raised.
    fn raised(&self, rule: &str) -> bool {
        self.findings.iter().any(|f| f.rule.as_str() == rule)
    }

    fn rules(&self) -> Vec<(String, String)> {
        self.findings
            .iter()
            .map(|f| (f.rule.as_str().to_string(), f.device.clone()))
            .collect()
    }

    fn has(&self, rule: &str, device: &str) -> &ConformanceFinding {
        self.findings
            .iter()
            .find(|f| f.rule.as_str() == rule && f.device == device)
            .unwrap_or_else(|| panic!("no {rule} for {device} in {:#?}", self.findings))
    }

    fn none(&self) {
        assert!(
            self.findings.is_empty(),
            "unexpected findings: {:#?}",
            self.findings
        );
    }
}

fn conn(id: u64, client: &str, server: &str) -> ConnectionInfo {
    ConnectionInfo {
        id: ConnId(id),
        client: client.parse::<SocketAddr>().unwrap(),
        server: server.parse::<SocketAddr>().unwrap(),
        first_ts_us: T0,
        requestor_known_by: RequestorBy::SynSeen,
    }
}

fn ui_modality() -> UserInformation {
    UserInformation {
        max_length: Some(16384),
        implementation_class_uid: Some("1.2.3.4.5.6".into()),
        implementation_version_name: Some("CT9000_52".into()),
        extended_negotiation: vec![ExtendedNegotiation {
            sop_class: CT.into(),
            info: "020000000000".into(),
        }],
        ..UserInformation::default()
    }
}

fn ui_pacs() -> UserInformation {
    UserInformation {
        max_length: Some(32768),
        ..UserInformation::default()
    }
}

fn store_rq(id: u16, inst: &str) -> Command {
    let mut c = Command::new(field::C_STORE_RQ);
    c.message_id = Some(id);
    c.affected_sop_class = Some(CT.into());
    c.affected_sop_instance = Some(inst.into());
    c.has_dataset = true;
    c
}

fn rsp(field_: u16, to: u16, status: u16, class: &str, inst: Option<&str>) -> Command {
    let mut c = Command::new(field_);
    c.responded_to = Some(to);
    c.affected_sop_class = Some(class.into());
    c.affected_sop_instance = inst.map(str::to_string);
    c.status = Some(dicomtap_wire::status::classify(status, field_));
    c
}

fn peek(charset: &[&str]) -> DatasetPeekEvent {
    DatasetPeekEvent {
        pc_id: 1,
        transfer_syntax: Some(EXPLICIT.into()),
        message_id: Some(1),
        peek: DatasetPeek {
            sop_instance_uid: Some("1.2.3.4.1".into()),
            specific_character_set: charset.iter().map(|s| s.to_string()).collect(),
            ..DatasetPeek::default()
        },
    }
}

// --- Storage Commitment data sets (Implicit VR Little Endian) -------------------------

fn el(out: &mut Vec<u8>, g: u16, e: u16, v: &[u8]) {
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    out.extend_from_slice(v);
}

fn ui(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        out.extend_from_slice(&(i.len() as u32).to_le_bytes());
        out.extend_from_slice(i);
    }
    out
}

fn ref_item(inst: &str, reason: Option<u16>) -> Vec<u8> {
    let mut v = Vec::new();
    el(&mut v, 0x0008, 0x1150, &ui(CT));
    el(&mut v, 0x0008, 0x1155, &ui(inst));
    if let Some(r) = reason {
        el(&mut v, 0x0008, 0x1197, &r.to_le_bytes());
    }
    v
}

fn commit_ds(txn: &str, ok: &[&str], failed: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    el(&mut v, 0x0008, 0x1195, &ui(txn));
    if !failed.is_empty() {
        el(
            &mut v,
            0x0008,
            0x1198,
            &seq(&failed
                .iter()
                .map(|i| ref_item(i, Some(0x0110)))
                .collect::<Vec<_>>()),
        );
    }
    if !ok.is_empty() {
        el(
            &mut v,
            0x0008,
            0x1199,
            &seq(&ok.iter().map(|i| ref_item(i, None)).collect::<Vec<_>>()),
        );
    }
    v
}

fn n_action(id: u16) -> Command {
    let mut c = Command::new(field::N_ACTION_RQ);
    c.message_id = Some(id);
    c.requested_sop_class = Some(COMMIT.into());
    c.requested_sop_instance = Some("1.2.840.10008.1.20.1.1".into());
    c.action_type_id = Some(1);
    c.has_dataset = true;
    c
}

fn n_event_report(id: u16, event_type: u16) -> Command {
    let mut c = Command::new(field::N_EVENT_REPORT_RQ);
    c.message_id = Some(id);
    c.affected_sop_class = Some(COMMIT.into());
    c.affected_sop_instance = Some("1.2.840.10008.1.20.1.1".into());
    c.event_type_id = Some(event_type);
    c.has_dataset = true;
    c
}

// --- Tests --------------------------------------------------------------------------

#[test]
fn a_conforming_association_raises_nothing() {
    let mut h = H::new(&[MODALITY, PACS]);
    h.good_assoc()
        .ev(
            Side::Requestor,
            EventKind::PData(PDataSummary {
                pdu_length: 16384,
                pdvs: Vec::new(),
            }),
        )
        .command(Side::Requestor, 1, store_rq(1, "1.2.3.4.1"))
        .ev(
            Side::Requestor,
            EventKind::DatasetPeek(peek(&["ISO_IR 100"])),
        )
        .at(0.5)
        .command(
            Side::Acceptor,
            1,
            rsp(field::C_STORE_RSP, 1, 0, CT, Some("1.2.3.4.1")),
        )
        .commitment_requested(2, "1.2.3.99", &["1.2.3.4.1"])
        .command(
            Side::Acceptor,
            3,
            rsp(field::N_ACTION_RSP, 2, 0, COMMIT, None),
        )
        .at(2.0)
        .command(Side::Acceptor, 3, n_event_report(1, 1))
        .data(
            Side::Acceptor,
            3,
            commit_ds("1.2.3.99", &["1.2.3.4.1"], &[]),
        )
        .ev(Side::Requestor, EventKind::ReleaseRq)
        .ev(Side::Acceptor, EventKind::ReleaseRp)
        .at(2.5)
        .ev(
            Side::Requestor,
            EventKind::StreamEnd {
                how: StreamEnd::Close,
            },
        )
        .end()
        .at(1000.0)
        .finish();
    h.none();
    assert_eq!(
        h.checker.pending(),
        (0, 0),
        "committed instances and transactions are forgotten"
    );
    let mut seen = h.checker.devices_seen();
    seen.sort();
    assert_eq!(seen, ["CT_DEVICE", "PACS_DEVICE"]);
}

#[test]
fn negotiation_rules() {
    let mut h = H::new(&[MODALITY, PACS]);
    let mut ui = ui_modality();
    ui.max_length = Some(8192);
    ui.implementation_version_name = Some("CT9000_60".into());
    ui.async_window = Some((4, 4));
    ui.role_selections = vec![RoleSelection {
        sop_class: CT.into(),
        scu: true,
        scp: true,
    }];
    ui.extended_negotiation = vec![ExtendedNegotiation {
        sop_class: CT.into(),
        info: "030000000000".into(),
    }];
    ui.user_identity = Some(UserIdentityRequest {
        identity_type: 5,
        identity_type_name: "jwt",
        positive_response_requested: false,
        username: None,
        primary_field_length: 100,
        secondary_field_length: 0,
    });
    h.rq(
        "CT9000",
        "PACS",
        &[
            (
                1,
                CT,
                &[J2K, "1.2.840.10008.1.2.5", "1.3.46.670589.33.1.4.1"],
            ),
            (3, MR, &[EXPLICIT]),
            (5, COMMIT, &[IMPLICIT]),
        ],
        ui,
    );
    let device = "CT_DEVICE";
    for rule in [
        "max-pdu-advertised-differs",
        "implementation-version-changed",
        "async-window-differs",
        "role-selection-differs",
        "extended-negotiation-differs",
        "user-identity-differs",
        "too-many-contexts",
        "transfer-syntax-not-claimed",
        "private-transfer-syntax-undocumented",
    ] {
        h.has(rule, device);
    }
    // MR as SCU, and CT as SCP (role selection proposed both roles).
    let not_claimed: Vec<&str> = h
        .findings
        .iter()
        .filter(|f| f.rule.as_str() == "sop-class-not-claimed")
        .map(|f| f.observed.as_str())
        .collect();
    assert_eq!(not_claimed.len(), 2, "{not_claimed:?}");
    assert!(
        not_claimed
            .iter()
            .any(|o| o.contains("CTImageStorage as SCP"))
    );
    assert!(
        not_claimed
            .iter()
            .any(|o| o.contains("MRImageStorage as SCU"))
    );
    assert!(
        h.has("extended-negotiation-differs", device)
            .observed
            .contains("level_of_support 3 (claimed 2)")
    );
    assert!(
        !h.rules().iter().any(|(_, d)| d == "PACS_DEVICE"),
        "{:?}",
        h.rules()
    );
}

/// SOP Class Common Extended Negotiation (0x57) is compared with the capability's
/// common_extended_negotiation: service class, related general SOP classes as a set.
#[test]
fn common_extended_negotiation_is_compared_with_the_statement() {
    const ENHANCED_CT: &str = "1.2.840.10008.5.1.4.1.1.2.1";
    const STORAGE_SERVICE: &str = "1.2.840.10008.4.2";
    let modality = MODALITY.replace(
        "[[ae.capability]]\nsop_class = \"StorageCommitmentPushModel\"",
        "[[ae.capability]]\nsop_class = \"EnhancedCTImageStorage\"\nrole = \"SCU\"\n\
         transfer_syntaxes = [\"ExplicitVRLittleEndian\"]\n\
         common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", \
         related_general_sop_classes = [\"CTImageStorage\"] }\n\
         [[ae.capability]]\nsop_class = \"StorageCommitmentPushModel\"",
    );
    assert!(modality.contains("common_extended_negotiation"));
    let modality = modality.replace(
        "max_presentation_contexts = 2",
        "max_presentation_contexts = 3",
    );
    let contexts: &[(u8, &str, &[&str])] = &[
        (1, CT, &[J2K, EXPLICIT]),
        (3, COMMIT, &[IMPLICIT]),
        (5, ENHANCED_CT, &[EXPLICIT]),
    ];
    let common = |sop: &str, service: &str, related: &[&str]| CommonExtendedNegotiation {
        sop_class: sop.into(),
        service_class: service.into(),
        related_general_sop_classes: related.iter().map(|s| s.to_string()).collect(),
    };
    let results: &[(u8, u8, Option<&str>)] = &[
        (1, 0, Some(J2K)),
        (3, 0, Some(IMPLICIT)),
        // The PACS does not claim Enhanced CT: it refuses the context.
        (5, 3, None),
    ];

    // As claimed: nothing.
    let mut h = H::new(&[&modality, PACS]);
    let mut ui = ui_modality();
    ui.common_extended_negotiation = vec![common(ENHANCED_CT, STORAGE_SERVICE, &[CT])];
    h.rq("CT9000", "PACS", contexts, ui).ac(results, ui_pacs());
    h.none();

    // A different service class and an extra related class.
    let mut h = H::new(&[&modality, PACS]);
    let mut ui = ui_modality();
    ui.common_extended_negotiation = vec![common(ENHANCED_CT, "1.2.840.10008.4.3", &[CT, MR])];
    h.rq("CT9000", "PACS", contexts, ui);
    let f = h.has("extended-negotiation-differs", "CT_DEVICE");
    assert!(
        f.claim
            .contains("common_extended_negotiation for EnhancedCTImageStorage")
            && f.claim.contains("1.2.840.10008.4.2"),
        "{f:#?}"
    );
    assert!(
        f.observed
            .contains("service class 1.2.840.10008.4.3 (claimed 1.2.840.10008.4.2)")
            && f.observed.contains("[MRImageStorage] not claimed"),
        "{f:#?}"
    );
    assert_eq!(h.findings.len(), 1, "{:#?}", h.findings);

    // Claimed but not sent; and sent for a SOP class that claims none.
    let mut h = H::new(&[&modality, PACS]);
    let mut ui = ui_modality();
    ui.common_extended_negotiation = vec![common(CT, STORAGE_SERVICE, &[])];
    h.rq("CT9000", "PACS", contexts, ui);
    let observed: Vec<&str> = h
        .findings
        .iter()
        .filter(|f| f.rule.as_str() == "extended-negotiation-differs")
        .map(|f| f.observed.as_str())
        .collect();
    assert_eq!(observed.len(), 2, "{:#?}", h.findings);
    assert!(
        observed.contains(&"no common extended negotiation proposed for EnhancedCTImageStorage"),
        "{observed:?}"
    );
    assert!(
        observed.iter().any(|o| o.starts_with(
            "proposed common extended negotiation for CTImageStorage: service class 1.2.840.10008.4.2"
        )),
        "{observed:?}"
    );

    // The key round-trips through the writer.
    let st = statement::parse(&modality, Path::new("m.toml")).unwrap();
    let text = statement::write::to_toml(&st);
    let again =
        statement::parse(&text, Path::new("w.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let cap = again.ae[0]
        .capability
        .iter()
        .find(|c| c.sop_class.uid == ENHANCED_CT)
        .unwrap();
    let c = cap.common_extended_negotiation.as_ref().unwrap();
    assert_eq!(c.service_class, STORAGE_SERVICE);
    assert_eq!(c.related_general_sop_classes[0].uid, CT);
    // A service class that is not a UID is an error naming the key.
    let bad = modality.replace("\"1.2.840.10008.4.2\"", "\"storage\"");
    let err = statement::parse(&bad, Path::new("bad.toml"))
        .expect_err("a service class keyword is not a UID")
        .to_string();
    assert!(
        err.contains("common_extended_negotiation.service_class"),
        "{err}"
    );
}

/// An acceptor that claims a user identity type and accepts a request for it with a
/// positive response requested must answer (0x59); without one it did not confirm it.
#[test]
fn user_identity_claimed_by_the_acceptor_but_not_answered() {
    let pacs = PACS.replace(
        "accept_calling_ae_titles",
        "user_identity = [\"username\"]\naccept_calling_ae_titles",
    );
    let request = |positive: bool| {
        let mut ui = ui_modality();
        ui.user_identity = Some(UserIdentityRequest {
            identity_type: 1,
            identity_type_name: "username",
            positive_response_requested: positive,
            username: Some("tech".into()),
            primary_field_length: 4,
            secondary_field_length: 0,
        });
        ui
    };
    let answered = |len: Option<u16>| {
        let mut ui = ui_pacs();
        ui.user_identity_response_length = len;
        ui
    };
    let results: &[(u8, u8, Option<&str>)] = &[(1, 0, Some(J2K)), (3, 0, Some(IMPLICIT))];
    let contexts: &[(u8, &str, &[&str])] = &[(1, CT, &[J2K, EXPLICIT]), (3, COMMIT, &[IMPLICIT])];

    let mut h = H::new(&[MODALITY, &pacs]);
    h.rq("CT9000", "PACS", contexts, request(true))
        .ac(results, answered(None));
    let f = h.has("user-identity-differs", "PACS_DEVICE");
    assert_eq!(f.claim, "user_identity = [username]");
    assert_eq!(
        f.observed,
        "accepted user identity of type 1 (username) with a positive response requested, without a response"
    );
    assert_eq!(h.findings.len(), 1, "{:#?}", h.findings);

    // Answered, or no positive response requested: nothing.
    let mut h = H::new(&[MODALITY, &pacs]);
    h.rq("CT9000", "PACS", contexts, request(true))
        .ac(results, answered(Some(0)))
        .end();
    h.on(1, "10.0.0.5:40001", "10.0.0.9:104")
        .rq("CT9000", "PACS", contexts, request(false))
        .ac(results, answered(None));
    h.none();
}

#[test]
fn acceptor_rules() {
    let mut h = H::new(&[MODALITY, PACS]);
    // Refused a claimed class; chose Explicit although JPEG 2000 (preferred) was proposed;
    // accepted MR it does not claim.
    h.rq(
        "CT9000",
        "PACS",
        &[
            (1, CT, &[J2K, EXPLICIT]),
            (3, CT, &[IMPLICIT]),
            (5, MR, &[EXPLICIT]),
        ],
        UserInformation {
            max_length: Some(16384),
            implementation_class_uid: Some("1.2.3.4.5.6".into()),
            implementation_version_name: Some("CT9000_52".into()),
            ..UserInformation::default()
        },
    );
    let mut ui = ui_pacs();
    ui.max_length = Some(0);
    ui.user_identity_response_length = Some(4);
    h.ac(
        &[(1, 0, Some(EXPLICIT)), (3, 3, None), (5, 0, Some(EXPLICIT))],
        ui,
    );
    let d = "PACS_DEVICE";
    assert!(h.has("acceptor-preference-ignored", d).observed.contains(
        "chose ExplicitVRLittleEndian for CTImageStorage although JPEG2000Lossless was proposed"
    ));
    assert!(
        h.has("sop-class-claimed-but-refused", d)
            .observed
            .contains("refused context 3")
    );
    assert!(
        h.has("sop-class-not-claimed", d)
            .observed
            .contains("MRImageStorage as SCP")
    );
    assert_eq!(
        h.has("max-pdu-advertised-differs", d).observed,
        "advertised Max Length 0"
    );
    h.has("user-identity-differs", d);
    // A P-DATA larger than the PACS advertised (0 = unlimited: none) and than CT9000 claims.
    h.ev(
        Side::Requestor,
        EventKind::PData(PDataSummary {
            pdu_length: 20000,
            pdvs: Vec::new(),
        }),
    );
    h.has("pdu-exceeds-claimed-max-send", "CT_DEVICE");
    assert!(!h.raised("pdu-exceeds-peer-max"));
    // The PACS sends a PDU above the CT's 16384.
    h.ev(
        Side::Acceptor,
        EventKind::PData(PDataSummary {
            pdu_length: 16390,
            pdvs: Vec::new(),
        }),
    );
    assert!(h.has("pdu-exceeds-peer-max", d).observed.contains("16390"));
    // Reported once per association.
    let n = h.findings.len();
    h.ev(
        Side::Acceptor,
        EventKind::PData(PDataSummary {
            pdu_length: 16390,
            pdvs: Vec::new(),
        }),
    );
    assert_eq!(h.findings.len(), n);
}

#[test]
fn security_and_address_rules() {
    let stranger = r#"
schema = "dicomtap-statement/1"
[device]
name = "SECURE_WS"
[[ae]]
title = "WS1"
initiator = true
tls = { required = true }
"#;
    let mut h = H::new(&[MODALITY, PACS, stranger]);
    // WS1 is not in the PACS allow-list, requires TLS, and the PACS is called on port 11112.
    h.on(0, "10.0.0.7:5000", "10.0.0.9:11112")
        .rq(
            "WS1",
            "PACS",
            &[(1, CT, &[EXPLICIT])],
            UserInformation::default(),
        )
        .ac(&[(1, 0, Some(EXPLICIT))], ui_pacs());
    assert!(
        h.has("calling-ae-not-allowed-accepted", "PACS_DEVICE")
            .observed
            .contains("WS1")
    );
    h.has("tls-claimed-plaintext-seen", "SECURE_WS");
    assert!(
        h.has("ae-address-not-claimed", "PACS_DEVICE")
            .observed
            .contains("port 11112")
    );
    // CT9000 from another host, rejected although allowed.
    h.findings.clear();
    h.on(1, "10.0.0.66:5000", "10.0.0.9:104")
        .rq("CT9000", "PACS", &[(1, CT, &[EXPLICIT])], ui_modality())
        .rj(1, 3);
    assert!(
        h.has("ae-address-not-claimed", "CT_DEVICE")
            .observed
            .contains("10.0.0.66")
    );
    h.has("association-rejected-for-allowed-ae", "PACS_DEVICE");
    // The PACS rejects its own title.
    h.findings.clear();
    h.on(2, "10.0.0.5:5001", "10.0.0.9:104")
        .rq("CT9000", "PACS", &[(1, CT, &[EXPLICIT])], ui_modality())
        .rj(1, 7);
    assert!(
        h.has("association-rejected-for-allowed-ae", "PACS_DEVICE")
            .observed
            .contains("called AE")
    );
    // A calling AE outside the allow-list refused with reason 7 (as DCMTK's dcmqrscp
    // answers its access list) conforms.
    h.findings.clear();
    h.on(3, "10.0.0.7:5002", "10.0.0.9:104")
        .rq(
            "WS1",
            "PACS",
            &[(1, CT, &[EXPLICIT])],
            UserInformation::default(),
        )
        .rj(1, 7);
    assert!(
        !h.raised("association-rejected-for-allowed-ae"),
        "{:#?}",
        h.findings
    );
    // An acceptor-only statement initiating.
    let acceptor_only = r#"
schema = "dicomtap-statement/1"
[device]
name = "ARCHIVE_ONLY"
[[ae]]
title = "ARCH"
acceptor = true
"#;
    let mut h = H::new(&[acceptor_only]);
    h.rq(
        "ARCH",
        "SOMEONE",
        &[(1, CT, &[EXPLICIT])],
        UserInformation::default(),
    );
    h.has("association-role-not-claimed", "ARCHIVE_ONLY");
}

/// Two acceptors of one title on one host, told apart by their ports: each association is
/// checked against the statement of the port it called.
#[test]
fn acceptors_of_one_title_are_matched_by_port() {
    let on = |device: &str, port: u16| {
        format!(
            "schema = \"dicomtap-statement/1\"\n[device]\nname = \"{device}\"\n\
             [[ae]]\ntitle = \"STORE\"\nport = {port}\nacceptor = true\n\
             [[ae.capability]]\nsop_class = \"CTImageStorage\"\nrole = \"SCP\"\n\
             transfer_syntaxes = [\"ExplicitVRLittleEndian\"]\n"
        )
    };
    let (a, b) = (on("STORE_104", 104), on("STORE_11112", 11112));
    let mut h = H::new(&[a.as_str(), b.as_str()]);
    for (i, port) in [104u16, 11112].into_iter().enumerate() {
        h.findings.clear();
        h.on(i as u64, "10.0.0.7:5000", &format!("10.0.0.9:{port}"))
            .rq(
                "CT9000",
                "STORE",
                &[(1, CT, &[EXPLICIT])],
                UserInformation::default(),
            )
            .ac(&[(1, 0, Some(EXPLICIT))], ui_pacs());
        assert!(
            !h.raised("ae-address-not-claimed"),
            "port {port}: {:#?}",
            h.findings
        );
    }
    // Another port: the first statement, which does not claim it.
    h.findings.clear();
    h.on(2, "10.0.0.7:5001", "10.0.0.9:2000")
        .rq(
            "CT9000",
            "STORE",
            &[(1, CT, &[EXPLICIT])],
            UserInformation::default(),
        )
        .ac(&[(1, 0, Some(EXPLICIT))], ui_pacs());
    assert!(
        h.has("ae-address-not-claimed", "STORE_104")
            .observed
            .contains("port 2000")
    );
}

#[test]
fn data_rules() {
    let mut h = H::new(&[MODALITY, PACS]);
    h.good_assoc()
        .command(Side::Requestor, 1, store_rq(1, "1.2.3.4.1"));
    let mut p = peek(&["", "ISO 2022 IR 87"]);
    p.peek.invalid_text = vec![InvalidText {
        tag: "(0010,0010)".into(),
        vr: "PN".into(),
        byte_offset: 3,
        reason: "byte 0xE9 is not valid".into(),
    }];
    p.peek.private_creators = vec![
        PrivateCreator {
            group: 0x0009,
            block: 0x10,
            creator: "ACME CT 1.0".into(),
            in_sequence: false,
        },
        PrivateCreator {
            group: 0x0019,
            block: 0x10,
            creator: "OTHER".into(),
            in_sequence: false,
        },
    ];
    p.peek.encoding_found = Some(Encoding::ImplicitVrLittleEndian);
    h.ev(Side::Requestor, EventKind::DatasetPeek(p));
    let d = "CT_DEVICE";
    assert!(
        h.has("character-set-not-claimed", d)
            .observed
            .contains("ISO 2022 IR 87")
    );
    let t = h.has("text-invalid-in-character-set", d);
    assert!(
        t.observed.contains("(0010,0010) PN at byte 3"),
        "{}",
        t.observed
    );
    assert_eq!(t.evidence.sop_instance.as_deref(), Some("1.2.3.4.1"));
    let pc = h.has("private-creator-undocumented", d);
    assert!(
        pc.observed.contains("\"OTHER\" (0019,10xx)") && !pc.observed.contains("ACME"),
        "{}",
        pc.observed
    );
    h.has("dataset-encoding-differs", d);
    // A status outside the PACS list, with its message ID.
    h.command(
        Side::Acceptor,
        1,
        rsp(field::C_STORE_RSP, 1, 0xC000, CT, Some("1.2.3.4.1")),
    );
    let s = h.has("status-not-claimed", "PACS_DEVICE");
    assert_eq!(s.evidence.message_id, Some(1));
    assert!(s.observed.starts_with("returned C000"), "{}", s.observed);
    // A listed one is fine.
    let n = h.findings.len();
    h.command(Side::Requestor, 1, store_rq(2, "1.2.3.4.2"))
        .command(
            Side::Acceptor,
            1,
            rsp(field::C_STORE_RSP, 2, 0xA700, CT, Some("1.2.3.4.2")),
        );
    assert_eq!(h.findings.len(), n);
}

#[test]
fn silent_success_on_the_same_association_and_report_association_claim() {
    let mut h = H::new(&[MODALITY, PACS]);
    h.good_assoc()
        .stored("1.2.3.4.1")
        .command(Side::Requestor, 1, store_rq(2, "1.2.3.4.2"))
        .command(
            Side::Acceptor,
            1,
            rsp(field::C_STORE_RSP, 2, 0xA700, CT, Some("1.2.3.4.2")),
        )
        .commitment_requested(3, "1.2.3.99", &["1.2.3.4.1", "1.2.3.4.2"])
        .at(5.0)
        .command(Side::Acceptor, 3, n_event_report(1, 2))
        .data(
            Side::Acceptor,
            3,
            commit_ds("1.2.3.99", &[], &["1.2.3.4.1", "1.2.3.4.2"]),
        );
    let silent: Vec<_> = h
        .findings
        .iter()
        .filter(|f| f.rule.as_str() == "silent-success")
        .collect();
    assert_eq!(
        silent.len(),
        1,
        "only the instance answered Success: {silent:#?}"
    );
    assert_eq!(silent[0].device, "PACS_DEVICE");
    assert!(
        silent[0].observed.contains("1.2.3.4.1")
            && silent[0].observed.contains("on the same association")
    );
    assert_eq!(silent[0].evidence.related.len(), 2);
    // Same association is claimed: no report-association finding. A report for another
    // transaction on a new association is.
    assert!(!h.raised("storage-commitment-report-association"));
    h.commitment_requested(4, "1.2.3.100", &["1.2.3.4.3"]).end();
    h.report_association(1, 10.0)
        .reported(1, "1.2.3.100", &["1.2.3.4.3"], &[]);
    assert!(
        h.has("storage-commitment-report-association", "PACS_DEVICE")
            .observed
            .contains("new association")
    );
}

#[test]
fn commitment_never_reported_within_the_claimed_wait_is_overdue() {
    let mut h = H::new(&[MODALITY, PACS]);
    stored_and_commitment_requested(&mut h);
    // 30 s later (within the claimed 60 s), nothing yet.
    h.on(1, "10.0.0.5:40001", "10.0.0.9:104")
        .at(30.0)
        .good_assoc();
    assert!(!h.raised("storage-commitment-overdue"), "{:?}", h.rules());
    // 61 s later, any traffic moves the clock past the deadline.
    h.at(61.5).ev(Side::Requestor, EventKind::ReleaseRq);
    let f = h.has("storage-commitment-overdue", "PACS_DEVICE");
    assert!(
        f.observed.contains("1.2.3.99") && f.observed.contains("within 60 s"),
        "{}",
        f.observed
    );
    assert_eq!(f.evidence.association, 0);
    assert_eq!(f.evidence.message_id, Some(2), "the N-ACTION");
    // Reported once; the transaction is kept for a late report.
    h.at(70.0).ev(Side::Requestor, EventKind::ReleaseRp);
    assert_eq!(overdue(&h).len(), 1, "{:?}", h.rules());
    assert_eq!(h.checker.pending().0, 1);
    // Forgotten after the commitment memory (a day).
    h.at(86_500.0).ev(Side::Requestor, EventKind::ReleaseRq);
    assert_eq!(h.checker.pending().0, 0);
    assert_eq!(overdue(&h).len(), 1, "{:?}", h.rules());
}

fn overdue(h: &H) -> Vec<&ConformanceFinding> {
    h.findings
        .iter()
        .filter(|f| f.rule.as_str() == "storage-commitment-overdue")
        .collect()
}

/// CT9000 stores 1.2.3.4.1 (Success) on association 0 and requests its commitment
/// (transaction 1.2.3.99, N-ACTION message 2), then releases.
fn stored_and_commitment_requested(h: &mut H) {
    h.good_assoc()
        .stored("1.2.3.4.1")
        .commitment_requested(2, "1.2.3.99", &["1.2.3.4.1"])
        .end();
}

/// The PACS reports transaction 1.2.3.99 at `secs` on a new association (id 1), with
/// 1.2.3.4.1 failed.
fn failed_report_on_a_new_association(h: &mut H, secs: f64) {
    h.report_association(1, secs)
        .reported(2, "1.2.3.99", &[], &["1.2.3.4.1"]);
}

#[test]
fn a_report_after_the_overdue_finding_is_still_checked() {
    let mut h = H::new(&[MODALITY, PACS]);
    stored_and_commitment_requested(&mut h);
    // The claimed 60 s pass: overdue, against the N-ACTION.
    h.on(2, "10.0.0.5:40001", "10.0.0.9:104")
        .at(61.5)
        .good_assoc();
    assert_eq!(overdue(&h).len(), 1, "{:?}", h.rules());
    assert_eq!(h.checker.pending().0, 1, "kept for its late report");
    // 90 s after the N-ACTION the report comes, on a new association (the PACS claims
    // same_association only), with the instance answered Success among the failed.
    failed_report_on_a_new_association(&mut h, 90.0);
    let a = h.has("storage-commitment-report-association", "PACS_DEVICE");
    assert!(a.observed.contains("new association"), "{}", a.observed);
    assert_eq!(a.evidence.association, 1);
    assert_eq!(a.evidence.related.len(), 1, "{:?}", a.evidence.related);
    let n_action = &a.evidence.related[0];
    assert!(n_action.what.starts_with("N-ACTION-RQ"), "{n_action:?}");
    assert_eq!((n_action.association, n_action.message_id), (0, Some(2)));
    let s = h.has("silent-success", "PACS_DEVICE");
    assert!(s.observed.contains("1.2.3.4.1"), "{}", s.observed);
    assert_eq!(s.evidence.related.len(), 2, "N-ACTION and C-STORE-RSP");
    // The lateness was reported once, when the wait passed; the report settles it.
    assert_eq!(overdue(&h).len(), 1, "{:?}", h.rules());
    assert_eq!(h.checker.pending().0, 0);
    h.end().finish();
    assert_eq!(overdue(&h).len(), 1, "{:?}", h.rules());
}

#[test]
fn a_report_just_after_the_wait_is_overdue_with_its_delay() {
    let mut h = H::new(&[MODALITY, PACS]);
    stored_and_commitment_requested(&mut h);
    // The report's association opens within the wait (59.8 s) and the report comes at
    // 60.5 s, before the passing deadline was noticed (expiry runs once a second): the
    // report itself is overdue and says how late it came.
    h.report_association(1, 59.8);
    assert!(overdue(&h).is_empty(), "{:?}", h.rules());
    h.at(60.5).reported(2, "1.2.3.99", &[], &["1.2.3.4.1"]);
    let o = overdue(&h);
    assert_eq!(o.len(), 1, "{:?}", h.rules());
    assert!(
        o[0].observed.contains("came 60.5 s after the N-ACTION"),
        "{}",
        o[0].observed
    );
    assert_eq!(o[0].evidence.association, 1, "the report");
    assert_eq!(o[0].evidence.related[0].message_id, Some(2), "the N-ACTION");
    h.has("storage-commitment-report-association", "PACS_DEVICE");
    h.has("silent-success", "PACS_DEVICE");
    // Settled: no second finding when the clock moves on.
    h.at(100.0)
        .ev(Side::Requestor, EventKind::ReleaseRq)
        .end()
        .finish();
    assert_eq!(overdue(&h).len(), 1, "{:?}", h.rules());
}

#[test]
fn overdue_transactions_are_bounded_in_number_and_age() {
    let mut h = H::modality_and_pacs(CheckerConfig {
        max_commitments: 3,
        commitment_memory_s: 120.0,
        ..CheckerConfig::default()
    });
    h.good_assoc();
    for i in 0..10u16 {
        h.command(Side::Requestor, 3, n_action(i)).data(
            Side::Requestor,
            3,
            commit_ds(&format!("1.2.3.{i}"), &["1.2.3.4.1"], &[]),
        );
    }
    assert_eq!(h.checker.pending().0, 3);
    // All three remembered are overdue after 60 s, and kept.
    h.at(61.5).ev(Side::Requestor, EventKind::ReleaseRq);
    assert_eq!(overdue(&h).len(), 3, "{:?}", h.rules());
    assert_eq!(h.checker.pending().0, 3);
    // Forgotten after the commitment memory (120 s here): a report then matches nothing.
    h.at(121.5).ev(Side::Acceptor, EventKind::ReleaseRp).end();
    assert_eq!(h.checker.pending().0, 0);
    h.report_association(1, 130.0)
        .reported(1, "1.2.3.9", &["1.2.3.4.1"], &[]);
    assert!(
        !h.raised("storage-commitment-report-association"),
        "{:?}",
        h.rules()
    );
    assert_eq!(overdue(&h).len(), 3, "{:?}", h.rules());
}

/// A data set peek of `inst` with private creator `creator`.
fn private_peek(inst: &str, creator: &str) -> EventKind {
    let mut p = peek(&[]);
    p.peek.sop_instance_uid = Some(inst.into());
    p.peek.private_creators = vec![PrivateCreator {
        group: 0x0029,
        block: 0x10,
        creator: creator.into(),
        in_sequence: false,
    }];
    EventKind::DatasetPeek(p)
}

fn private_findings(h: &H) -> Vec<&ConformanceFinding> {
    h.findings
        .iter()
        .filter(|f| f.rule.as_str() == "private-creator-undocumented")
        .collect()
}

/// The PACS opens association `id` to CT9000 and sends it these data sets (as the
/// sub-operations of a C-MOVE would).
fn pacs_sends(h: &mut H, id: u64, sets: &[(&str, &str)]) {
    h.on(id, &format!("10.0.0.9:{}", 6000 + id), "10.0.0.5:104")
        .rq(
            "PACS",
            "CT9000",
            &[(1, CT, &[EXPLICIT])],
            UserInformation::default(),
        )
        .ac(&[(1, 0, Some(EXPLICIT))], UserInformation::default());
    for (i, (inst, creator)) in sets.iter().enumerate() {
        h.command(Side::Requestor, 1, store_rq(i as u16 + 1, inst))
            .ev(Side::Requestor, private_peek(inst, creator));
    }
    h.end();
}

#[test]
fn private_creators_of_relayed_instances_are_not_the_relays() {
    let mut h = H::modality_and_pacs(CheckerConfig {
        max_stores: 2,
        ..CheckerConfig::default()
    });
    // The CT stores three instances with its documented private creator; the PACS
    // answers Success.
    h.good_assoc();
    for (i, inst) in ["1.2.3.4.1", "1.2.3.4.2", "1.2.3.4.3"].iter().enumerate() {
        let id = i as u16 + 1;
        h.command(Side::Requestor, 1, store_rq(id, inst))
            .ev(Side::Requestor, private_peek(inst, "ACME CT 1.0"))
            .command(
                Side::Acceptor,
                1,
                rsp(field::C_STORE_RSP, id, 0, CT, Some(inst)),
            );
    }
    h.end();
    assert!(private_findings(&h).is_empty(), "{:?}", h.rules());
    // The PACS (no private creators claimed) relays the last one it received: its
    // creators are the CT's, not the PACS's.
    pacs_sends(&mut h, 1, &[("1.2.3.4.3", "ACME CT 1.0")]);
    assert!(private_findings(&h).is_empty(), "{:?}", h.rules());
    // An instance it never received is its own.
    pacs_sends(&mut h, 2, &[("1.2.3.4.9", "ACME CT 1.0")]);
    let f = private_findings(&h);
    assert_eq!(f.len(), 1, "{:?}", h.rules());
    assert_eq!(f[0].device, "PACS_DEVICE");
    assert_eq!(f[0].evidence.sop_instance.as_deref(), Some("1.2.3.4.9"));
    assert!(
        f[0].observed.contains("\"ACME CT 1.0\""),
        "{}",
        f[0].observed
    );
    // Memory of received instances is capped (two here): the first is forgotten, so
    // the PACS is blamed for it; the second is still known.
    pacs_sends(
        &mut h,
        3,
        &[("1.2.3.4.2", "ACME CT 1.0"), ("1.2.3.4.1", "ACME CT 1.0")],
    );
    let f = private_findings(&h);
    assert_eq!(f.len(), 2, "{:?}", h.rules());
    assert_eq!(f[1].evidence.sop_instance.as_deref(), Some("1.2.3.4.1"));
}

#[test]
fn cross_association_memory_is_bounded() {
    let mut h = H::modality_and_pacs(CheckerConfig {
        max_stores: 10,
        store_memory_s: 100.0,
        ..CheckerConfig::default()
    });
    h.good_assoc();
    for i in 0..50u16 {
        let inst = format!("1.2.3.4.{i}");
        h.command(Side::Requestor, 1, store_rq(i, &inst)).command(
            Side::Acceptor,
            1,
            rsp(field::C_STORE_RSP, i, 0, CT, Some(&inst)),
        );
    }
    assert!(h.checker.pending().1 <= 11, "{:?}", h.checker.pending());
    h.at(200.0).ev(Side::Requestor, EventKind::ReleaseRq);
    assert_eq!(h.checker.pending().1, 0, "expired");
}

#[test]
fn timeouts_and_association_limits() {
    let mut h = H::new(&[MODALITY, PACS]);
    // The CT aborts 3 s after the last PDU on an idle association (claims idle = 10).
    h.good_assoc().at(3.0).ev(
        Side::Requestor,
        EventKind::Abort(Abort {
            source: 0,
            reason: 0,
            description: String::new(),
        }),
    );
    let f = h.has("timeout-shorter-than-claimed", "CT_DEVICE");
    assert!(
        f.claim.contains("timeouts_s.idle = 10") && f.observed.contains("3.0 s"),
        "{f:?}"
    );
    h.end();
    // The CT waits 200 s for a C-STORE response before closing (claims dimse = 60).
    h.findings.clear();
    h.on(1, "10.0.0.5:40002", "10.0.0.9:104")
        .at(10.0)
        .good_assoc()
        .command(Side::Requestor, 1, store_rq(1, "1.2.3.4.9"))
        .at(210.0)
        .ev(
            Side::Requestor,
            EventKind::StreamEnd {
                how: StreamEnd::Close,
            },
        );
    let f = h.has("timeout-longer-than-claimed", "CT_DEVICE");
    assert!(f.claim.contains("dimse = 60"), "{f:?}");
    // Quick closes are not timeouts; provider aborts for protocol errors neither.
    h.end();
    h.findings.clear();
    h.on(2, "10.0.0.5:40003", "10.0.0.9:104")
        .at(300.0)
        .good_assoc()
        .at(300.2)
        .ev(
            Side::Requestor,
            EventKind::Abort(Abort {
                source: 0,
                reason: 0,
                description: String::new(),
            }),
        );
    h.none();
    h.end();
    // Two simultaneous associations from the CT (claims initiator = 1).
    h.on(3, "10.0.0.5:40004", "10.0.0.9:104")
        .at(400.0)
        .good_assoc();
    h.on(4, "10.0.0.5:40005", "10.0.0.9:104").good_assoc();
    assert!(
        h.has("max-associations-exceeded", "CT_DEVICE")
            .observed
            .contains("2 simultaneous")
    );
    h.end();
    h.on(3, "10.0.0.5:40004", "10.0.0.9:104").end();
    // The PACS (acceptor limit 2) rejects with local-limit-exceeded while nothing is open.
    h.on(5, "10.0.0.5:40006", "10.0.0.9:104")
        .rq("CT9000", "PACS", &[(1, CT, &[J2K])], ui_modality())
        .rj(3, 2);
    assert!(
        h.has("local-limit-below-claim", "PACS_DEVICE")
            .observed
            .contains("while 0 association")
    );
}

#[test]
fn implementation_class_uid_against_the_claim() {
    let mut h = H::new(&[MODALITY, PACS]);
    let mut ui = ui_modality();
    ui.implementation_class_uid = Some("1.2.3.4.5.7".into());
    h.rq("CT9000", "PACS", &[(1, CT, &[J2K])], ui);
    let f = h.has("implementation-uid-changed", "CT_DEVICE");
    assert_eq!(f.claim, "implementation_class_uid = \"1.2.3.4.5.6\"");
}

#[test]
fn unknown_aes_are_not_checked() {
    let mut h = H::new(&[MODALITY, PACS]);
    h.rq(
        "NOBODY",
        "NOWHERE",
        &[(1, MR, &["1.9.9.9"])],
        UserInformation::default(),
    )
    .ac(&[(1, 0, Some("1.9.9.9"))], UserInformation::default())
    .command(
        Side::Acceptor,
        1,
        rsp(field::C_STORE_RSP, 1, 0xC000, MR, None),
    )
    .finish();
    h.none();
}
