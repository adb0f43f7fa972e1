//! The rule catalogue: every check of a device statement against traffic, with a stable
//! id, a severity, the statement key it checks, a one-line description, why it matters
//! for an integration, how it is detected and what to do about it.
//!
//! Ids are stable: they appear in JSON findings, JUnit test case names, metric labels and
//! the docs (`docs/rules/<id>.md`, generated from this table). Rules are only ever added.

use dicomtap_wire::Severity;
use serde::Serialize;

/// A conformance rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    SopClassNotClaimed,
    SopClassClaimedButRefused,
    TransferSyntaxNotClaimed,
    DatasetEncodingDiffers,
    PrivateTransferSyntaxUndocumented,
    AcceptorPreferenceIgnored,
    MaxPduAdvertisedDiffers,
    PduExceedsPeerMax,
    PduExceedsClaimedMaxSend,
    TooManyContexts,
    CharacterSetNotClaimed,
    TextInvalidInCharacterSet,
    PrivateCreatorUndocumented,
    ImplementationUidChanged,
    ImplementationVersionChanged,
    AsyncWindowDiffers,
    RoleSelectionDiffers,
    ExtendedNegotiationDiffers,
    UserIdentityDiffers,
    TimeoutShorterThanClaimed,
    TimeoutLongerThanClaimed,
    MaxAssociationsExceeded,
    LocalLimitBelowClaim,
    CallingAeNotAllowedAccepted,
    AssociationRejectedForAllowedAe,
    StatusNotClaimed,
    SilentSuccess,
    StorageCommitmentOverdue,
    StorageCommitmentReportAssociation,
    TlsClaimedPlaintextSeen,
    AeAddressNotClaimed,
    AssociationRoleNotClaimed,
}

/// What the catalogue says about a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub severity: Severity,
    /// The statement key(s) the rule checks (a row of the format page's table).
    pub claim: &'static str,
    /// One line: what the rule reports.
    pub summary: &'static str,
    /// Why it matters for an integration.
    pub why: &'static str,
    /// How the rule is evaluated on the traffic.
    pub detection: &'static str,
    /// What to do about a finding.
    pub remedy: &'static str,
}

impl RuleId {
    /// Every rule, in catalogue order.
    pub const ALL: [RuleId; 32] = [
        RuleId::SopClassNotClaimed,
        RuleId::SopClassClaimedButRefused,
        RuleId::TransferSyntaxNotClaimed,
        RuleId::DatasetEncodingDiffers,
        RuleId::PrivateTransferSyntaxUndocumented,
        RuleId::AcceptorPreferenceIgnored,
        RuleId::MaxPduAdvertisedDiffers,
        RuleId::PduExceedsPeerMax,
        RuleId::PduExceedsClaimedMaxSend,
        RuleId::TooManyContexts,
        RuleId::CharacterSetNotClaimed,
        RuleId::TextInvalidInCharacterSet,
        RuleId::PrivateCreatorUndocumented,
        RuleId::ImplementationUidChanged,
        RuleId::ImplementationVersionChanged,
        RuleId::AsyncWindowDiffers,
        RuleId::RoleSelectionDiffers,
        RuleId::ExtendedNegotiationDiffers,
        RuleId::UserIdentityDiffers,
        RuleId::TimeoutShorterThanClaimed,
        RuleId::TimeoutLongerThanClaimed,
        RuleId::MaxAssociationsExceeded,
        RuleId::LocalLimitBelowClaim,
        RuleId::CallingAeNotAllowedAccepted,
        RuleId::AssociationRejectedForAllowedAe,
        RuleId::StatusNotClaimed,
        RuleId::SilentSuccess,
        RuleId::StorageCommitmentOverdue,
        RuleId::StorageCommitmentReportAssociation,
        RuleId::TlsClaimedPlaintextSeen,
        RuleId::AeAddressNotClaimed,
        RuleId::AssociationRoleNotClaimed,
    ];

    /// The stable id, e.g. `silent-success`.
    pub fn as_str(self) -> &'static str {
        self.rule().id_str()
    }

    /// The catalogue entry.
    pub fn rule(self) -> &'static Rule {
        // CATALOGUE is in the order of ALL; the test below keeps it so.
        let i = RuleId::ALL.iter().position(|r| *r == self).unwrap_or(0);
        &CATALOGUE[i]
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == id)
    }

    /// Default severity.
    pub fn severity(self) -> Severity {
        self.rule().severity
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Rule {
    /// The stable id as text.
    pub fn id_str(&self) -> &'static str {
        ID_STRINGS[RuleId::ALL.iter().position(|r| *r == self.id).unwrap_or(0)]
    }
}

const ID_STRINGS: [&str; 32] = [
    "sop-class-not-claimed",
    "sop-class-claimed-but-refused",
    "transfer-syntax-not-claimed",
    "dataset-encoding-differs",
    "private-transfer-syntax-undocumented",
    "acceptor-preference-ignored",
    "max-pdu-advertised-differs",
    "pdu-exceeds-peer-max",
    "pdu-exceeds-claimed-max-send",
    "too-many-contexts",
    "character-set-not-claimed",
    "text-invalid-in-character-set",
    "private-creator-undocumented",
    "implementation-uid-changed",
    "implementation-version-changed",
    "async-window-differs",
    "role-selection-differs",
    "extended-negotiation-differs",
    "user-identity-differs",
    "timeout-shorter-than-claimed",
    "timeout-longer-than-claimed",
    "max-associations-exceeded",
    "local-limit-below-claim",
    "calling-ae-not-allowed-accepted",
    "association-rejected-for-allowed-ae",
    "status-not-claimed",
    "silent-success",
    "storage-commitment-overdue",
    "storage-commitment-report-association",
    "tls-claimed-plaintext-seen",
    "ae-address-not-claimed",
    "association-role-not-claimed",
];

use Severity::{Error, Info, Warning};

/// The catalogue, in the order of [`RuleId::ALL`].
pub const CATALOGUE: [Rule; 32] = [
    Rule {
        id: RuleId::SopClassNotClaimed,
        severity: Warning,
        claim: "ae.capability.sop_class + role",
        summary: "A SOP class was proposed or accepted in a role the device's statement does not claim.",
        why: "The statement is what the other side was configured from: a SOP class used but not claimed was never validated by the integration, and the next software update may drop it without notice.",
        detection: "Every proposed presentation context is the requestor acting as SCU for its abstract syntax (SCP when role selection says so), every accepted one the acceptor acting as SCP (SCU when it accepted the requestor's SCP role). Each is looked up in the AE's capabilities with that role.",
        remedy: "Add the capability to the statement if the vendor supports it (and ask for the updated conformance statement), or configure the device not to propose or accept the SOP class.",
    },
    Rule {
        id: RuleId::SopClassClaimedButRefused,
        severity: Error,
        claim: "ae.capability.sop_class + role",
        summary: "The acceptor refused a presentation context for a SOP class it claims as SCP, with a transfer syntax it claims proposed.",
        why: "The integration was planned on this capability; a refusal means the images, reports or queries of that class silently never arrive (most senders skip instances without an accepted context).",
        detection: "A-ASSOCIATE-AC results other than acceptance for contexts whose abstract syntax the acceptor claims as SCP, when at least one proposed transfer syntax is in the claim (so the refusal is not explained by the transfer syntaxes).",
        remedy: "Check the acceptor's configuration (enabled SOP classes, license options, AE-specific filters) against the statement; a licensed option that is off is the usual cause.",
    },
    Rule {
        id: RuleId::TransferSyntaxNotClaimed,
        severity: Warning,
        claim: "ae.capability.transfer_syntaxes",
        summary: "A transfer syntax was proposed, or chosen by the acceptor, that the device's statement does not list for that SOP class.",
        why: "Transfer syntaxes decide whether the receiver can decode the pixel data: an unclaimed one chosen at negotiation is the classic cause of images that are stored but cannot be displayed, or of lossy images where lossless was agreed.",
        detection: "The transfer syntaxes the requestor proposes for a context are checked against the requestor's capability for that SOP class; the one the acceptor chooses against the acceptor's.",
        remedy: "Restrict the device's transfer syntax configuration to the claimed list, or correct the statement.",
    },
    Rule {
        id: RuleId::DatasetEncodingDiffers,
        severity: Error,
        claim: "ae.capability.transfer_syntaxes",
        summary: "A data set was not encoded in the transfer syntax negotiated for its presentation context.",
        why: "Receivers decode data sets as negotiated: Implicit VR bytes sent under Explicit VR (or the reverse) are misread by strict peers, corrupting or rejecting the object.",
        detection: "The dataset peek reads the first elements and notes when their encoding (explicit or implicit VR) contradicts the context's accepted transfer syntax.",
        remedy: "A device fault: report it to the vendor with the evidence; as a workaround, limit the negotiation to the syntax the device really writes.",
    },
    Rule {
        id: RuleId::PrivateTransferSyntaxUndocumented,
        severity: Warning,
        claim: "private_uids / ae.capability.transfer_syntaxes",
        summary: "A transfer syntax UID that is not in the DICOM registry was proposed or accepted and the statement does not document it.",
        why: "A private transfer syntax only works between devices of the same vendor; when it is negotiated with a third party, the receiver stores bytes it cannot decode.",
        detection: "Proposed and accepted transfer syntax UIDs that are not in PS3.6 are looked up in the device's capabilities and documented private UIDs.",
        remedy: "Document the private syntax (with `[private_uids]`) if it is intended, otherwise disable it on the device for associations with third parties.",
    },
    Rule {
        id: RuleId::AcceptorPreferenceIgnored,
        severity: Warning,
        claim: "ae.capability.preferred_transfer_syntaxes",
        summary: "The acceptor chose a transfer syntax other than its stated preference although the preferred one was proposed.",
        why: "Preferences are how sites get lossless compression or native encoding end to end; an acceptor that ignores its stated preference changes storage size, network load, or image quality from what was planned.",
        detection: "For each accepted context, the first of the acceptor's preferred transfer syntaxes that the requestor proposed is compared with the one chosen.",
        remedy: "Check the acceptor's transfer syntax preference configuration; correct the statement if the order is really different.",
    },
    Rule {
        id: RuleId::MaxPduAdvertisedDiffers,
        severity: Warning,
        claim: "ae.max_pdu_receive",
        summary: "The Max Length item the device advertised differs from the maximum PDU size its statement claims.",
        why: "Peers size every P-DATA-TF from this value; a device advertising something else than it claims shows configuration drift, and a smaller value costs throughput on large studies.",
        detection: "Max Length Received (user information sub-item 0x51) of the A-ASSOCIATE-RQ or -AC the AE sent, compared with max_pdu_receive (0 = unlimited).",
        remedy: "Align the device's maximum PDU configuration with the statement (or update the statement).",
    },
    Rule {
        id: RuleId::PduExceedsPeerMax,
        severity: Error,
        claim: "ae.max_pdu_send",
        summary: "The device sent a P-DATA-TF larger than the maximum the receiving peer advertised.",
        why: "A receiver may abort the association on a PDU larger than it advertised (PS3.8 allows it); transfers fail intermittently with some receivers and not others.",
        detection: "The length of every P-DATA-TF is compared with the Max Length the other side advertised in the negotiation.",
        remedy: "A sender fault; report it to the vendor. Some devices have a setting that caps the PDU size they send.",
    },
    Rule {
        id: RuleId::PduExceedsClaimedMaxSend,
        severity: Warning,
        claim: "ae.max_pdu_send",
        summary: "The device sent a P-DATA-TF larger than the largest PDU its statement says it sends.",
        why: "Network and proxy sizing (buffers, MTU-related tuning, limits of gateways) is planned from the statement; larger PDUs show a configuration that differs from the documented one.",
        detection: "The length of every P-DATA-TF the AE sent is compared with max_pdu_send.",
        remedy: "Correct the statement or the device's PDU size configuration.",
    },
    Rule {
        id: RuleId::TooManyContexts,
        severity: Warning,
        claim: "ae.max_presentation_contexts",
        summary: "The device proposed or accepted more presentation contexts in one association than its statement claims.",
        why: "Acceptors with a lower limit reject or truncate the association; knowing the real number matters when pairing the device with a peer that has a small context table.",
        detection: "The number of contexts in the A-ASSOCIATE-RQ (requestor) and the number accepted in the A-ASSOCIATE-AC (acceptor) are compared with max_presentation_contexts.",
        remedy: "Reduce the SOP classes or transfer syntaxes proposed per association, or correct the statement.",
    },
    Rule {
        id: RuleId::CharacterSetNotClaimed,
        severity: Warning,
        claim: "ae.character_sets",
        summary: "A data set the device sent declares a Specific Character Set (0008,0005) its statement does not list.",
        why: "Receivers display or store names and text through the declared set; one the integration did not plan for turns patient names into mojibake in the PACS, RIS or reports.",
        detection: "Every value of (0008,0005) in the data sets the AE sent is compared with character_sets (absent or empty means ISO_IR 6 only; no (0008,0005) always conforms).",
        remedy: "Configure the device's character set to the claimed one, or check that every peer supports the one it uses and update the statement.",
    },
    Rule {
        id: RuleId::TextInvalidInCharacterSet,
        severity: Error,
        claim: "ae.character_sets",
        summary: "Text values in a data set the device sent are not valid in the character set the data set declares.",
        why: "This is how patient names get mangled: bytes written in one character set and declared as another are decoded wrongly by every receiver, and the wrong name is then stored and matched on.",
        detection: "The dataset peek checks every text value's bytes against the repertoire declared by (0008,0005) (for example Latin-1 bytes under ISO_IR 192 or UTF-8 under ISO_IR 100). The values themselves are never reported.",
        remedy: "Fix the device's character set configuration so that the declared set matches the bytes it writes; this usually needs the vendor.",
    },
    Rule {
        id: RuleId::PrivateCreatorUndocumented,
        severity: Warning,
        claim: "ae.private_creators",
        summary: "A data set the device sent contains a private creator element its statement does not document.",
        why: "Private attributes carry vendor data (dose, reconstruction, annotations); undocumented ones may be dropped, coerced or misinterpreted by archives and de-identification profiles.",
        detection: "Private creator elements (gggg,0010-00FF) found by the dataset peek in data sets sent by the AE are compared with private_creators; a data set whose SOP instance the AE itself received earlier in the traffic (C-STORE Success) is relayed, not written by it (an archive's C-MOVE/C-GET sub-operations), and is not checked.",
        remedy: "Ask the vendor for the private dictionary and add the creator to the statement, or check why the device writes it.",
    },
    Rule {
        id: RuleId::ImplementationUidChanged,
        severity: Warning,
        claim: "ae.implementation_class_uid",
        summary: "The Implementation Class UID the device sent differs from the statement (or from the one it sent before).",
        why: "The implementation class UID identifies the software build; a change means the device was updated or replaced, and its validated behaviour may have changed with it.",
        detection: "User information sub-item 0x52 of the AE's A-ASSOCIATE-RQ/AC is compared with implementation_class_uid; when the statement has none, with the first one seen for the AE.",
        remedy: "Find out what changed on the device, re-validate the integration, and update the statement.",
    },
    Rule {
        id: RuleId::ImplementationVersionChanged,
        severity: Warning,
        claim: "ae.implementation_version_name",
        summary: "The Implementation Version Name the device sent differs from the statement (or from the one it sent before).",
        why: "A software update shows up here first; behaviour the integration was validated against (transfer syntaxes, statuses, character sets) may have changed with it.",
        detection: "User information sub-item 0x55 of the AE's A-ASSOCIATE-RQ/AC is compared with implementation_version_name; when the statement has none, with the first one seen for the AE.",
        remedy: "Find out what changed on the device, re-validate the integration, and update the statement.",
    },
    Rule {
        id: RuleId::AsyncWindowDiffers,
        severity: Warning,
        claim: "ae.async_window",
        summary: "The Asynchronous Operations Window the device negotiated differs from its statement.",
        why: "Asynchronous operations change how many requests may be outstanding at once; a peer that does not expect them may time out or mis-pair responses.",
        detection: "User information sub-item 0x53 sent by the AE is compared with async_window (absent in the statement means the device does not negotiate it).",
        remedy: "Align the device's asynchronous operations configuration with the statement.",
    },
    Rule {
        id: RuleId::RoleSelectionDiffers,
        severity: Warning,
        claim: "ae.capability.role_selection",
        summary: "The SCP/SCU Role Selection the device negotiated for a SOP class differs from its statement.",
        why: "Role selection decides who may send what (C-GET retrieval, Storage Commitment reports on the same association); an unexpected role means the exchange the integration relies on will be refused.",
        detection: "Role selection sub-items (0x54) the AE sent are compared with the role_selection of its capabilities for that SOP class; a role it accepted must be one of its capabilities.",
        remedy: "Align the device's role selection configuration with the statement.",
    },
    Rule {
        id: RuleId::ExtendedNegotiationDiffers,
        severity: Warning,
        claim: "ae.capability.extended_negotiation / common_extended_negotiation",
        summary: "The SOP Class Extended Negotiation or SOP Class Common Extended Negotiation the device sent differs from its statement.",
        why: "Extended negotiation announces storage level of support, digital signatures, element coercion, relational or fuzzy queries: the peer relies on these answers to know what will be kept and matched.",
        detection: "SOP class extended negotiation sub-items (0x56) sent by the AE are decoded per service class (storage, query, retrieve) and compared field by field with the capability's extended_negotiation. SOP class common extended negotiation sub-items (0x57), which only the requestor sends, are compared with common_extended_negotiation: the service class UID, and the related general SOP classes as a set (each one sent but not claimed, or claimed but not sent, is named).",
        remedy: "Align the device's configuration with the statement, or correct the statement.",
    },
    Rule {
        id: RuleId::UserIdentityDiffers,
        severity: Warning,
        claim: "ae.user_identity",
        summary: "A User Identity type was sent or answered that the device's statement does not list.",
        why: "User identity is an access control mechanism; one used but not documented (or documented but not enforced) weakens the audit and security assumptions of the integration.",
        detection: "The type of the user identity sub-item (0x58) of a requestor, and the presence of a response (0x59) from an acceptor, are compared with user_identity. An acceptor that accepts an association whose requestor asked for a positive response, for a type its user_identity lists, without sending the response is reported too: it did not confirm the identity it claims to handle.",
        remedy: "Align the device's user identity configuration with the statement.",
    },
    Rule {
        id: RuleId::TimeoutShorterThanClaimed,
        severity: Warning,
        claim: "ae.timeouts_s",
        summary: "The device gave up (A-ABORT or close) after waiting less than the timeout its statement claims.",
        why: "Peers are tuned from the claimed timeouts; a device that gives up earlier aborts slow but legitimate exchanges (large C-MOVEs, busy archives), which look like random transfer failures.",
        detection: "When an AE aborts or closes without release, the idle gap since the last PDU is measured and compared with the matching claim: artim while a requestor waits for the A-ASSOCIATE answer or an AE waits for the A-RELEASE-RP to its own A-RELEASE-RQ, dimse while a request of its own is unanswered, idle otherwise. Gaps under one second are not counted as timeouts. Not checked, because traffic does not show them: connect (a TCP connect given up leaves no packet of its own, only unanswered SYNs without an AE title) and an acceptor's ARTIM while it waits for the A-ASSOCIATE-RQ (a connection closed before its first PDU carries no AE title and is not recognised as DICOM).",
        remedy: "Align the device's timeout configuration with the statement and with its peers' response times.",
    },
    Rule {
        id: RuleId::TimeoutLongerThanClaimed,
        severity: Info,
        claim: "ae.timeouts_s",
        summary: "The device gave up only after waiting clearly longer than the timeout its statement claims.",
        why: "A claimed timeout that is not enforced lets hung associations hold resources (association slots, locks) for longer than the site planned.",
        detection: "As for timeout-shorter-than-claimed: the idle gap before an abort or close by the AE is above the claim plus 10% and one second.",
        remedy: "Check the device's timeout configuration; correct the statement if the value is really longer.",
    },
    Rule {
        id: RuleId::MaxAssociationsExceeded,
        severity: Warning,
        claim: "ae.max_associations",
        summary: "More simultaneous associations were seen for the device than its statement claims.",
        why: "Peers and proxies size their connection pools from this number; a device opening more than it claims can exhaust a receiver's slots and cause rejections for other senders.",
        detection: "Accepted associations are counted per AE and role (initiator, acceptor) while they are open and compared with max_associations.",
        remedy: "Limit the device's parallel associations, or correct the statement.",
    },
    Rule {
        id: RuleId::LocalLimitBelowClaim,
        severity: Warning,
        claim: "ae.max_associations",
        summary: "The device rejected an association for local-limit-exceeded while fewer associations than it claims were open.",
        why: "Senders plan their parallelism on the claimed limit; rejections below it cause retries, delays and failed transfers at peak times.",
        detection: "A-ASSOCIATE-RJ with reason local-limit-exceeded sent by the AE is compared with the number of its open associations as acceptor and the claimed acceptor limit.",
        remedy: "Check the device's association limit configuration (and whether other peers outside the capture hold associations).",
    },
    Rule {
        id: RuleId::CallingAeNotAllowedAccepted,
        severity: Error,
        claim: "ae.accept_calling_ae_titles",
        summary: "The device accepted an association from a calling AE title its statement's allow-list does not contain.",
        why: "AE title checking is often the only access control in a DICOM network; an acceptor that claims it but does not enforce it exposes patient data to any device on the network.",
        detection: "The calling AE title of every association the AE accepted is compared with accept_calling_ae_titles (absent = any title).",
        remedy: "Enable calling AE title checking on the device, or correct the statement.",
    },
    Rule {
        id: RuleId::AssociationRejectedForAllowedAe,
        severity: Warning,
        claim: "ae.accept_calling_ae_titles",
        summary: "The device rejected an association with calling- or called-AE-title-not-recognized although the titles conform to its statement.",
        why: "A rejection of an allowed peer means the integration is broken at the first step: nothing is exchanged, usually because of a configuration mismatch (title, host, port) on the acceptor.",
        detection: "A-ASSOCIATE-RJ reasons 3 (calling AE title not recognized) and 7 (called AE title not recognized) are compared with accept_calling_ae_titles and the AE's own title. A rejection of a calling AE title that accept_calling_ae_titles does not list conforms with either reason (some acceptors, DCMTK's dcmqrscp among them, answer an access-list refusal with reason 7).",
        remedy: "Add the calling AE (with its host and port if the acceptor checks them) to the acceptor's configuration.",
    },
    Rule {
        id: RuleId::StatusNotClaimed,
        severity: Warning,
        claim: "ae.statuses / ae.capability.statuses",
        summary: "The device returned a DIMSE status its statement does not list.",
        why: "Senders decide what to retry, what to report and what to delete from the status; an undocumented status is handled as an unknown failure (or worse, as success) by the peer.",
        detection: "The status of every response the AE sent is compared with the statuses of its capability for the SOP class, or the AE-level list (absent = not checked).",
        remedy: "Ask the vendor what the status means in this context and add it to the statement, or find out what the device disliked (the error comment is in the evidence).",
    },
    Rule {
        id: RuleId::SilentSuccess,
        severity: Error,
        claim: "ae.capability.storage_commitment",
        summary: "An instance was answered C-STORE Success and later reported failed by Storage Commitment.",
        why: "Senders delete local copies after Success plus commitment; a commitment failure after a Success status means the archive lost data it said it had, possibly discovered only when the study is missing.",
        detection: "C-STORE responses are remembered by SOP instance UID (bounded, with expiry); the Failed SOP Sequence (0008,1198) of every Storage Commitment N-EVENT-REPORT, on any association, is checked against them.",
        remedy: "Investigate the archive's storage (disk, database, coercion rules) for the failed instances and resend them; report the silent failure to the vendor.",
    },
    Rule {
        id: RuleId::StorageCommitmentOverdue,
        severity: Warning,
        claim: "ae.capability.storage_commitment.max_wait_s",
        summary: "A Storage Commitment request was not answered by an N-EVENT-REPORT within the claimed maximum wait.",
        why: "Senders keep local copies until commitment; a commitment that never comes fills the sender's disk or makes it give up and resend, and the instances may not be safely archived.",
        detection: "Each N-ACTION Request Storage Commitment (by Transaction UID) is remembered until its N-EVENT-REPORT; when the claimed max_wait_s (of the SCP, else of the SCU) passes in capture time without one, or the report comes later than that, the rule fires, once per transaction. The transaction is remembered after that (until the commitment memory, a day by default, or the claimed wait if longer, passes; the most recent 10,000 transactions at most), so a report that comes late is still matched: it is checked for its association (storage-commitment-report-association) and its failed instances (silent-success), with the N-ACTION linked in the evidence. A capture that ends before the deadline proves nothing and reports nothing.",
        remedy: "Check the commitment SCP's queue and its ability to connect back to the requestor (report on a new association needs the requestor's AE, host and port configured).",
    },
    Rule {
        id: RuleId::StorageCommitmentReportAssociation,
        severity: Warning,
        claim: "ae.capability.storage_commitment.report_on",
        summary: "A Storage Commitment report was sent on a kind of association (the same one, or a new one) that the statement does not claim.",
        why: "A requestor that only listens for reports on the association it opened (or only accepts new associations for them) never sees a report sent the other way, and keeps waiting.",
        detection: "The N-EVENT-REPORT is matched to its N-ACTION by Transaction UID; whether it came on the same association is compared with report_on of the SCP's capability.",
        remedy: "Configure how the commitment SCP reports, or correct the statement.",
    },
    Rule {
        id: RuleId::TlsClaimedPlaintextSeen,
        severity: Error,
        claim: "ae.tls.required",
        summary: "Plain (unencrypted) DICOM was seen to or from a device whose statement says it requires TLS.",
        why: "Patient data crossed the network in clear text although the integration was designed around TLS; this is a security and often a regulatory problem.",
        detection: "Any association PDU that could be decoded (so the traffic was not TLS) involving an AE whose tls.required is true.",
        remedy: "Enable TLS on both sides (or close the plain port on the device).",
    },
    Rule {
        id: RuleId::AeAddressNotClaimed,
        severity: Warning,
        claim: "ae.hosts / ae.port",
        summary: "An AE title was used from an address, or accepted on a port, that its statement does not list.",
        why: "Another device using a known AE title (a clone, a test system, a misconfiguration) receives or sends data meant for the real one; routing and access control by AE title then go wrong.",
        detection: "The client address of a requestor and the server address and port of an acceptor are compared with the AE's hosts and port.",
        remedy: "Find the device using the title from the unexpected address; give each device a unique AE title.",
    },
    Rule {
        id: RuleId::AssociationRoleNotClaimed,
        severity: Warning,
        claim: "ae.initiator / ae.acceptor",
        summary: "The device initiated an association although its statement says it does not, or accepted one although it says it does not.",
        why: "It shows an AE title used by a different application than the statement describes, or a device configured differently from its documentation.",
        detection: "The association requestor's AE is checked against initiator = false, the acceptor's against acceptor = false.",
        remedy: "Check which application uses the AE title, and correct the configuration or the statement.",
    },
];

/// The catalogue as a Markdown page for `docs/rules/<id>.md`.
pub fn doc_page(rule: &Rule) -> String {
    format!(
        "# `{id}`\n\n\
         - **Severity:** {sev}\n\
         - **Statement key:** `{claim}`\n\n\
         {summary}\n\n\
         ## Why it matters for an integration\n\n{why}\n\n\
         ## How it is detected\n\n{detection}\n\n\
         ## What to do\n\n{remedy}\n\n\
         Findings of this rule carry `\"rule\": \"{id}\"` in `dicomtap analyze --json` output \
         and appear as the JUnit test case `{id}` of each device.\n\n\
         See [all rules](README.md).\n",
        id = rule.id_str(),
        sev = rule.severity,
        claim = rule.claim,
        summary = rule.summary,
        why = rule.why,
        detection = rule.detection,
        remedy = rule.remedy,
    )
}

/// The index page `docs/rules/README.md`.
pub fn doc_index() -> String {
    let mut s = String::from(
        "# Conformance rules\n\n\
         `dicomtap analyze --statements DIR` checks the traffic of every device that has a \
         statement (format: `statement-format.md`) against these rules; `dicomtap rules` \
         lists them. Each finding names the rule, the device and AE, the claim, what was \
         observed, and the evidence (capture, association, offset or message ID, time).\n\n\
         These pages are generated from the catalogue in \
         `analyzer/src/conformance/rules.rs` (`DICOMTAP_BLESS=1 cargo test -p \
         dicomtap-analyzer --test conformance_docs` rewrites them).\n\n\
         | rule | severity | statement key | what it reports |\n|---|---|---|---|\n",
    );
    for r in &CATALOGUE {
        s.push_str(&format!(
            "| [`{id}`]({id}.md) | {} | `{}` | {} |\n",
            r.severity,
            r.claim,
            r.summary,
            id = r.id_str()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_order_and_ids_are_unique() {
        for (i, r) in CATALOGUE.iter().enumerate() {
            assert_eq!(r.id, RuleId::ALL[i], "catalogue entry {i}");
        }
        let mut ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RuleId::ALL.len());
        for r in RuleId::ALL {
            assert_eq!(RuleId::from_id(r.as_str()), Some(r));
            // The serde form is the same id.
            assert_eq!(
                serde_json::to_value(r).ok(),
                Some(serde_json::Value::String(r.as_str().to_string()))
            );
        }
    }
}
