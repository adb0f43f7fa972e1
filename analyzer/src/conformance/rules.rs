//! The rule catalogue: every check of a device statement against traffic, with a stable
//! id, a severity, the statement key it checks, a one-line description, why it matters
//! for an integration, how it is detected and what to do about it.
//!
//! Ids are stable: they appear in JSON findings, JUnit test case names, metric labels and
//! the docs (`docs/rules/<id>.md`, generated from the catalogue). Rules are only ever added.
//!
//! Each rule family is a module of its own (negotiation and contexts, transfer syntaxes,
//! PDU sizes, data and character sets, private tags, timing, associations and security,
//! Storage Commitment) holding its rules' catalogue entries, their checks and their unit
//! tests; [`super::checker`] keeps the per-association state and feeds them. A new rule
//! is a variant here and an entry and a check in its family.

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

/// The rule families: each module holds its rules' catalogue entries and their checks.
pub(crate) mod association;
pub(crate) mod commitment;
pub(crate) mod data;
pub(crate) mod negotiation;
pub(crate) mod pdu_size;
pub(crate) mod private_tags;
pub(crate) mod timing;
pub(crate) mod transfer_syntax;

/// The catalogue entries of every family.
const FAMILIES: [&[Rule]; 8] = [
    &negotiation::RULES,
    &transfer_syntax::RULES,
    &pdu_size::RULES,
    &data::RULES,
    &private_tags::RULES,
    &timing::RULES,
    &association::RULES,
    &commitment::RULES,
];

/// The families' entries in the order of [`RuleId::ALL`]; a rule without an entry, or
/// with two, does not compile.
const fn catalogue() -> [Rule; RuleId::ALL.len()] {
    let mut out = [FAMILIES[0][0]; RuleId::ALL.len()];
    let mut i = 0;
    while i < RuleId::ALL.len() {
        let mut found = 0;
        let mut f = 0;
        while f < FAMILIES.len() {
            let mut j = 0;
            while j < FAMILIES[f].len() {
                if FAMILIES[f][j].id as usize == RuleId::ALL[i] as usize {
                    out[i] = FAMILIES[f][j];
                    found += 1;
                }
                j += 1;
            }
            f += 1;
        }
        assert!(found == 1, "every rule has exactly one catalogue entry");
        i += 1;
    }
    let mut total = 0;
    let mut f = 0;
    while f < FAMILIES.len() {
        total += FAMILIES[f].len();
        f += 1;
    }
    assert!(total == RuleId::ALL.len(), "a family lists a rule twice");
    out
}

/// The catalogue, in the order of [`RuleId::ALL`].
pub const CATALOGUE: [Rule; 32] = catalogue();

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
         These pages are generated from the catalogue: each rule's entry is in the module \
         of its family in `analyzer/src/conformance/rules/`, beside its checks \
         (`DICOMTAP_BLESS=1 cargo test -p \
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
