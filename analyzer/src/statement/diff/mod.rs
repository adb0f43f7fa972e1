//! Statement against statement: for every ordered pair of an initiating AE and an
//! accepting AE of two devices, predicts the association negotiation from the two
//! statements, SOP class by SOP class, and lists the differences that bite in practice.
//!
//! Assumptions (also printed with every report):
//! - The initiator proposes one presentation context per SOP class it claims as SCU (and
//!   one per SOP class it claims as SCP with SCP role selection, as a C-GET SCU does for
//!   the storage sub-operations), each with all the transfer syntaxes of its capability,
//!   in the order written.
//! - The acceptor accepts a context when it claims the SOP class in the complementary
//!   role and shares a transfer syntax. It answers with the first of its
//!   `preferred_transfer_syntaxes` that was proposed; without a preference, with the first
//!   proposed one it supports (the initiator's order), which is what most SCPs do
//!   (DCMTK, pynetdicom, dcm4che without preferences).
//! - A role selection item is only honoured when the acceptor's capability states one.
//!
//! Modules: `predict` (one pair, one context), `summary` (per pair outcome and counts,
//! the default text), `text` (the full listing), `html` (the matrix page).

use serde::Serialize;

use super::model::*;

mod html;
mod predict;
mod summary;
mod text;

pub use html::{HtmlOptions, to_html, to_html_with};
pub use predict::diff_pair;
pub use summary::{
    Finding, FindingLevel, Outcome, PairSummary, Summary, SummaryCounts, to_summary_text,
};
pub use text::to_text;

/// The assumptions behind every prediction.
pub const ASSUMPTIONS: &[&str] = &[
    "the initiator proposes one presentation context per SOP class it claims as SCU (and per SOP class it claims as SCP with SCP role selection), with all its transfer syntaxes in the order written",
    "the acceptor answers with the first of its preferred_transfer_syntaxes that was proposed; without a preference, with the first proposed one it supports (the initiator's order), as most SCPs do",
    "SCP/SCU role selection is honoured only when the acceptor's capability states role_selection",
];

/// How bad a difference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueSeverity {
    /// Worth knowing; nothing fails.
    Info,
    /// Works, but degraded or fragile (one side must adapt, an option is lost).
    Warning,
    /// Predicted to fail.
    Failure,
}

impl IssueSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueSeverity::Info => "info",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Failure => "FAILURE",
        }
    }
}

/// What a difference between two statements is about; JSON and the reports spell it in
/// kebab-case (`ae-allow-list`, `max-pdu`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    AeAllowList,
    Tls,
    MaxPdu,
    Contexts,
    CharacterSets,
    AsyncWindow,
    UserIdentity,
    Identity,
    RoleSelection,
    Role,
    ExtendedNegotiation,
    StorageCommitment,
    Capability,
    TransferSyntax,
    PreferredTransferSyntax,
    Statuses,
    PrivateCreators,
    Compression,
    Lossy,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 19] = [
        Topic::AeAllowList,
        Topic::Tls,
        Topic::MaxPdu,
        Topic::Contexts,
        Topic::CharacterSets,
        Topic::AsyncWindow,
        Topic::UserIdentity,
        Topic::Identity,
        Topic::RoleSelection,
        Topic::Role,
        Topic::ExtendedNegotiation,
        Topic::StorageCommitment,
        Topic::Capability,
        Topic::TransferSyntax,
        Topic::PreferredTransferSyntax,
        Topic::Statuses,
        Topic::PrivateCreators,
        Topic::Compression,
        Topic::Lossy,
    ];

    /// The topic as reports and JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::AeAllowList => "ae-allow-list",
            Topic::Tls => "tls",
            Topic::MaxPdu => "max-pdu",
            Topic::Contexts => "contexts",
            Topic::CharacterSets => "character-sets",
            Topic::AsyncWindow => "async-window",
            Topic::UserIdentity => "user-identity",
            Topic::Identity => "identity",
            Topic::RoleSelection => "role-selection",
            Topic::Role => "role",
            Topic::ExtendedNegotiation => "extended-negotiation",
            Topic::StorageCommitment => "storage-commitment",
            Topic::Capability => "capability",
            Topic::TransferSyntax => "transfer-syntax",
            Topic::PreferredTransferSyntax => "preferred-transfer-syntax",
            Topic::Statuses => "statuses",
            Topic::PrivateCreators => "private-creators",
            Topic::Compression => "compression",
            Topic::Lossy => "lossy",
        }
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One difference between the two statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: IssueSeverity,
    pub topic: Topic,
    pub message: String,
}

/// A device's AE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub device: String,
    pub ae: String,
}

impl Endpoint {
    pub fn label(&self) -> String {
        format!("{}/{}", self.device, self.ae)
    }
}

/// The predicted answer to one proposed presentation context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextPrediction {
    pub sop_class: UidRef,
    /// The role the initiator takes (SCP for reversed roles, e.g. C-GET storage).
    pub initiator_role: Role,
    pub accepted: bool,
    /// The transfer syntax the acceptor is predicted to answer with.
    pub transfer_syntax: Option<UidRef>,
    /// Transfer syntaxes both sides support, in the initiator's order.
    pub common_transfer_syntaxes: Vec<UidRef>,
    /// Why it is rejected (PS3.8 result reason), when it is.
    pub rejection: Option<String>,
    /// The PS3.8 presentation context result when rejected: 3 (abstract syntax not
    /// supported) or 4 (transfer syntaxes not supported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_result: Option<u8>,
    /// On a result 4 rejection: the transfer syntaxes the initiator proposes...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proposed_transfer_syntaxes: Vec<UidRef>,
    /// ... and those the acceptor accepts for the SOP class.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acceptor_transfer_syntaxes: Vec<UidRef>,
    pub issues: Vec<Issue>,
}

/// Overall prediction for a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every proposed context accepted, no failure.
    Compatible,
    /// The association works for some SOP classes, or a failure is predicted for some.
    Partial,
    /// The association is rejected, or no proposed context is accepted.
    Incompatible,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compatible => "ok",
            Verdict::Partial => "partial",
            Verdict::Incompatible => "FAIL",
        }
    }
}

/// One ordered pair (initiator AE, acceptor AE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairDiff {
    pub initiator: Endpoint,
    pub acceptor: Endpoint,
    pub verdict: Verdict,
    /// Association-level differences (allow-list, TLS, PDU sizes, context counts, ...).
    pub association: Vec<Issue>,
    pub contexts: Vec<ContextPrediction>,
    /// Largest P-DATA-TF from initiator to acceptor that both statements allow (0 = no limit
    /// stated on either side).
    pub pdu_to_acceptor: u32,
    /// Largest P-DATA-TF from acceptor to initiator.
    pub pdu_to_initiator: u32,
}

impl PairDiff {
    /// Accepted and proposed context counts.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.contexts.iter().filter(|c| c.accepted).count(),
            self.contexts.len(),
        )
    }

    /// Any predicted failure: rejected association or context, or a failure issue.
    pub fn has_failure(&self) -> bool {
        self.verdict != Verdict::Compatible
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// Every AE compared, as "DEVICE/AE", in input order.
    pub endpoints: Vec<Endpoint>,
    /// Pairs with at least one SOP class in common (others have nothing to negotiate).
    pub pairs: Vec<PairDiff>,
    /// AEs with the same title in two statements (a vendor's claim and an inferred or
    /// newer statement): what the second states that the first does not, and vice versa.
    pub drift: Vec<AeDrift>,
    pub assumptions: Vec<&'static str>,
    /// Per pair outcome and counts, for the whole scope (see `Summary`).
    pub summary: Summary,
}

/// The same AE title in two statements: the first is taken as the claim, the second as
/// what is compared with it (typically `statement infer` output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AeDrift {
    pub title: String,
    pub claimed_by: String,
    pub compared: String,
    pub differences: Vec<Issue>,
}

impl DiffReport {
    pub fn has_failure(&self) -> bool {
        self.pairs.iter().any(PairDiff::has_failure)
    }

    /// Any drift difference at warning level or above.
    pub fn has_drift(&self) -> bool {
        self.drift.iter().any(|d| {
            d.differences
                .iter()
                .any(|x| x.severity >= IssueSeverity::Warning)
        })
    }

    pub fn pair(&self, initiator: &Endpoint, acceptor: &Endpoint) -> Option<&PairDiff> {
        self.pairs
            .iter()
            .find(|p| &p.initiator == initiator && &p.acceptor == acceptor)
    }
}

/// Compares every initiating AE of each statement with every accepting AE of the others.
pub fn diff(statements: &[Statement]) -> DiffReport {
    let mut endpoints = Vec::new();
    for s in statements {
        for a in &s.ae {
            endpoints.push(Endpoint {
                device: s.device.name.clone(),
                ae: a.title.clone(),
            });
        }
    }
    let mut pairs = Vec::new();
    let mut not_applicable = Vec::new();
    for (i, si) in statements.iter().enumerate() {
        for ai in si.ae.iter().filter(|a| a.initiator) {
            for (j, sj) in statements.iter().enumerate() {
                if i == j {
                    continue;
                }
                for aj in sj.ae.iter().filter(|a| a.acceptor) {
                    match diff_pair(si, ai, sj, aj) {
                        Some(p) => pairs.push(p),
                        None => not_applicable.push((
                            Endpoint {
                                device: si.device.name.clone(),
                                ae: ai.title.clone(),
                            },
                            Endpoint {
                                device: sj.device.name.clone(),
                                ae: aj.title.clone(),
                            },
                        )),
                    }
                }
            }
        }
    }
    let mut drift_list = Vec::new();
    for (i, si) in statements.iter().enumerate() {
        for sj in statements.iter().skip(i + 1) {
            for ai in &si.ae {
                if let Some(aj) = sj.ae(&ai.title) {
                    drift_list.push(drift(si, ai, sj, aj));
                }
            }
        }
    }
    let mut devices: Vec<&str> = statements.iter().map(|s| s.device.name.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    let summary = summary::summarize(devices.len(), &pairs, not_applicable);
    DiffReport {
        endpoints,
        pairs,
        drift: drift_list,
        assumptions: ASSUMPTIONS.to_vec(),
        summary,
    }
}

/// Compares two statements of the same AE: `b`'s claims against `a`'s.
pub fn drift(sa: &Statement, a: &Ae, sb: &Statement, b: &Ae) -> AeDrift {
    use IssueSeverity::{Info, Warning};
    let (na, nb) = (sa.device.name.as_str(), sb.device.name.as_str());
    let mut d = Vec::new();
    for cb in &b.capability {
        match a.capability(&cb.sop_class.uid, cb.role) {
            None => d.push(issue(
                Warning,
                Topic::Capability,
                format!(
                    "{nb} has {} {}, which {na} does not claim",
                    cb.sop_class, cb.role
                ),
            )),
            Some(ca) => {
                let extra: Vec<UidRef> = cb
                    .transfer_syntaxes
                    .iter()
                    .filter(|t| !ca.has_transfer_syntax(&t.uid))
                    .cloned()
                    .collect();
                if !extra.is_empty() {
                    d.push(issue(
                        Warning,
                        Topic::TransferSyntax,
                        format!(
                            "{} {}: {nb} has {}, which {na} does not claim",
                            cb.sop_class,
                            cb.role,
                            labels(&extra)
                        ),
                    ));
                }
                if let (Some(pa), Some(pb)) = (
                    ca.preferred_transfer_syntaxes.first(),
                    cb.preferred_transfer_syntaxes.first(),
                ) && pa.uid != pb.uid
                {
                    d.push(issue(
                        Warning,
                        Topic::PreferredTransferSyntax,
                        format!("{} {}: {na} prefers {pa}, {nb} {pb}", cb.sop_class, cb.role),
                    ));
                }
                if cb.role_selection != ca.role_selection && cb.role_selection.is_some() {
                    d.push(issue(
                        Warning,
                        Topic::RoleSelection,
                        format!(
                            "{} {}: role selection {} in {nb}, {} in {na}",
                            cb.sop_class,
                            cb.role,
                            role_sel(cb.role_selection),
                            role_sel(ca.role_selection)
                        ),
                    ));
                }
                if cb.extended_negotiation.is_some()
                    && cb.extended_negotiation != ca.extended_negotiation
                {
                    d.push(issue(
                        Warning,
                        Topic::ExtendedNegotiation,
                        format!(
                            "{} {}: extended negotiation {} in {nb}, {} in {na}",
                            cb.sop_class,
                            cb.role,
                            ext_neg(cb.extended_negotiation.as_ref()),
                            ext_neg(ca.extended_negotiation.as_ref())
                        ),
                    ));
                }
                if cb.common_extended_negotiation.is_some()
                    && cb.common_extended_negotiation != ca.common_extended_negotiation
                {
                    d.push(issue(
                        Warning,
                        Topic::ExtendedNegotiation,
                        format!(
                            "{} {}: common extended negotiation {} in {nb}, {} in {na}",
                            cb.sop_class,
                            cb.role,
                            common_ext_neg(cb.common_extended_negotiation.as_ref()),
                            common_ext_neg(ca.common_extended_negotiation.as_ref())
                        ),
                    ));
                }
                if let Some(sb_) = &cb.statuses {
                    let bad: Vec<String> = sb_
                        .iter()
                        .filter(|r| {
                            !(r.lo..=r.hi)
                                .all(|c| a.allows_status(c, &cb.sop_class.uid) != Some(false))
                        })
                        .map(ToString::to_string)
                        .collect();
                    if !bad.is_empty() {
                        d.push(issue(
                            Warning,
                            Topic::Statuses,
                            format!(
                                "{} {}: statuses {} in {nb} are not allowed by {na}",
                                cb.sop_class,
                                cb.role,
                                bad.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    let unused = a
        .capability
        .iter()
        .filter(|ca| b.capability(&ca.sop_class.uid, ca.role).is_none())
        .count();
    if unused > 0 {
        d.push(issue(
            Info,
            Topic::Capability,
            format!("{unused} capabilities of {na} are not in {nb}"),
        ));
    }
    for (what, va, vb) in [
        (
            "implementation_class_uid",
            a.implementation_class_uid.clone(),
            b.implementation_class_uid.clone(),
        ),
        (
            "implementation_version_name",
            a.implementation_version_name.clone(),
            b.implementation_version_name.clone(),
        ),
        (
            "max_pdu_receive",
            a.max_pdu_receive.map(|v| v.to_string()),
            b.max_pdu_receive.map(|v| v.to_string()),
        ),
    ] {
        if let (Some(x), Some(y)) = (&va, &vb)
            && x != y
        {
            d.push(issue(
                Warning,
                Topic::Identity,
                format!("{what}: {na} {x}, {nb} {y}"),
            ));
        }
    }
    if let (Some(sa_), Some(sb_)) = (a.max_pdu_send, b.max_pdu_send)
        && sa_ != 0
        && (sb_ == 0 || sb_ > sa_)
    {
        d.push(issue(
            Warning,
            Topic::MaxPdu,
            format!("max_pdu_send: {na} {sa_}, {nb} {sb_}"),
        ));
    }
    if let (Some(ma), Some(mb)) = (a.max_presentation_contexts, b.max_presentation_contexts)
        && mb > ma
    {
        d.push(issue(
            Warning,
            Topic::Contexts,
            format!("max_presentation_contexts: {na} {ma}, {nb} {mb}"),
        ));
    }
    let aset = a.effective_character_sets();
    let cs: Vec<&String> = b
        .character_sets
        .iter()
        .filter(|c| !aset.contains(c))
        .collect();
    if !cs.is_empty() {
        d.push(issue(
            Warning,
            Topic::CharacterSets,
            format!("{nb} has {}, which {na} does not declare", list(&cs)),
        ));
    }
    let pc: Vec<&String> = b
        .private_creators
        .iter()
        .filter(|c| !a.private_creators.contains(c))
        .collect();
    if !pc.is_empty() {
        d.push(issue(
            Warning,
            Topic::PrivateCreators,
            format!(
                "{nb} has private creators {}, which {na} does not document",
                list(&pc)
            ),
        ));
    }
    if let Some(sb_) = &b.statuses {
        let bad: Vec<String> = sb_
            .iter()
            .filter(|r| {
                a.statuses
                    .as_ref()
                    .is_some_and(|l| !(r.lo..=r.hi).all(|c| statuses_contain(l, c)))
            })
            .map(ToString::to_string)
            .collect();
        if !bad.is_empty() {
            d.push(issue(
                Warning,
                Topic::Statuses,
                format!("{nb} returns {}, which {na} does not list", bad.join(", ")),
            ));
        }
    }
    if let (Some(wb), wa) = (b.async_window, a.async_window)
        && Some(wb) != wa
    {
        d.push(issue(
            Warning,
            Topic::AsyncWindow,
            format!(
                "async window {} in {nb}, {} in {na}",
                window(Some(wb)),
                window(wa)
            ),
        ));
    }
    for (role, fa, fb) in [
        ("initiator", a.initiator, b.initiator),
        ("acceptor", a.acceptor, b.acceptor),
    ] {
        if fb && !fa {
            d.push(issue(
                Warning,
                Topic::Role,
                format!("{nb} acts as {role}; {na} says it does not"),
            ));
        }
    }
    let _ = sb;
    AeDrift {
        title: a.title.clone(),
        claimed_by: na.to_owned(),
        compared: nb.to_owned(),
        differences: d,
    }
}

fn issue(severity: IssueSeverity, topic: Topic, message: String) -> Issue {
    Issue {
        severity,
        topic,
        message,
    }
}

fn list(l: &[&String]) -> String {
    l.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

fn labels(l: &[UidRef]) -> String {
    l.iter().map(UidRef::label).collect::<Vec<_>>().join(", ")
}

/// A role selection claim for people.
fn role_sel(r: Option<RoleSelection>) -> String {
    r.map_or_else(
        || "none".to_owned(),
        |r| format!("{{ scu = {}, scp = {} }}", r.scu, r.scp),
    )
}

/// An async window claim for people.
fn window(w: Option<AsyncWindow>) -> String {
    w.map_or_else(
        || "none".to_owned(),
        |w| format!("{{ invoked = {}, performed = {} }}", w.invoked, w.performed),
    )
}

/// An extended negotiation claim for people, in the statement's own words.
fn ext_neg(e: Option<&ExtendedNegotiation>) -> String {
    let Some(e) = e else {
        return "none".to_owned();
    };
    let flag = |name: &str, v: Option<bool>| v.map(|v| format!("{name} = {v}"));
    let num = |name: &str, v: Option<u8>| v.map(|v| format!("{name} = {v}"));
    let mut parts = Vec::new();
    if let Some(s) = e.storage {
        let f: Vec<String> = [
            num("level_of_support", s.level_of_support),
            num("digital_signature", s.digital_signature),
            num("element_coercion", s.element_coercion),
        ]
        .into_iter()
        .flatten()
        .collect();
        parts.push(format!("storage = {{ {} }}", f.join(", ")));
    }
    if let Some(x) = e.find {
        let f: Vec<String> = [
            flag("relational", x.relational),
            flag("combined_date_time", x.combined_date_time),
            flag("fuzzy_person_name", x.fuzzy_person_name),
            flag("timezone_adjust", x.timezone_adjust),
        ]
        .into_iter()
        .flatten()
        .collect();
        parts.push(format!("find = {{ {} }}", f.join(", ")));
    }
    if let Some(x) = e.retrieve {
        let f: Vec<String> = [flag("relational", x.relational)]
            .into_iter()
            .flatten()
            .collect();
        parts.push(format!("retrieve = {{ {} }}", f.join(", ")));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        format!("{{ {} }}", parts.join(", "))
    }
}

/// A common extended negotiation claim for people.
fn common_ext_neg(c: Option<&CommonExtendedNegotiation>) -> String {
    c.map_or_else(
        || "none".to_string(),
        |c| {
            format!(
                "{{ service_class = {}, related_general_sop_classes = [{}] }}",
                c.service_class,
                labels(&c.related_general_sop_classes)
            )
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn topics_read_as_their_json_spelling() {
        for t in Topic::ALL {
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::Value::String(t.as_str().to_string()))
            );
            assert_eq!(t.to_string(), t.as_str());
        }
        let mut all: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), Topic::ALL.len());
    }

    #[test]
    fn drift_messages_use_the_statement_syntax() {
        let a = "schema = \"dicomtap-statement/1\"\n[device]\nname = \"V\"\n[[ae]]\ntitle = \"X\"\ninitiator = true\nacceptor = true\n\
[[ae.capability]]\nsop_class = \"StudyRootQueryRetrieveInformationModelFind\"\nrole = \"SCP\"\ntransfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n";
        let b = a.replace("name = \"V\"", "name = \"W\"").replace(
            "transfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n",
            "transfer_syntaxes = [\"ImplicitVRLittleEndian\"]\nrole_selection = { scu = true, scp = false }\nextended_negotiation = { find = { relational = true } }\n",
        );
        let b = b.replace(
            "acceptor = true\n",
            "acceptor = true\nasync_window = { invoked = 2, performed = 2 }\n",
        );
        let sa = super::super::parse(a, Path::new("a.toml")).unwrap();
        let sb = super::super::parse(&b, Path::new("b.toml")).unwrap();
        let d = drift(&sa, &sa.ae[0], &sb, &sb.ae[0]);
        let msgs: Vec<&str> = d.differences.iter().map(|x| x.message.as_str()).collect();
        assert!(
            msgs.contains(&"StudyRootQueryRetrieveInformationModelFind SCP: role selection { scu = true, scp = false } in W, none in V"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"StudyRootQueryRetrieveInformationModelFind SCP: extended negotiation { find = { relational = true } } in W, none in V"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"async window { invoked = 2, performed = 2 } in W, none in V"),
            "{msgs:?}"
        );
        assert!(msgs.iter().all(|m| !m.contains("Some(")), "{msgs:?}");
    }
}
