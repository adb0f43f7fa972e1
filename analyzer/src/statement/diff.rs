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

use std::fmt::Write as _;

use serde::Serialize;

use super::model::*;

const SOP_COMMITMENT: &str = "1.2.840.10008.1.20.1";

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

/// One difference between the two statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: IssueSeverity,
    /// Short topic: "ae-allow-list", "tls", "max-pdu", "contexts", "character-sets",
    /// "async-window", "user-identity", "role-selection", "extended-negotiation",
    /// "storage-commitment".
    pub topic: &'static str,
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
    for (i, si) in statements.iter().enumerate() {
        for ai in si.ae.iter().filter(|a| a.initiator) {
            for (j, sj) in statements.iter().enumerate() {
                if i == j {
                    continue;
                }
                for aj in sj.ae.iter().filter(|a| a.acceptor) {
                    if let Some(p) = diff_pair(si, ai, sj, aj) {
                        pairs.push(p);
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
    DiffReport {
        endpoints,
        pairs,
        drift: drift_list,
        assumptions: ASSUMPTIONS.to_vec(),
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
                "capability",
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
                        "transfer-syntax",
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
                        "preferred-transfer-syntax",
                        format!("{} {}: {na} prefers {pa}, {nb} {pb}", cb.sop_class, cb.role),
                    ));
                }
                if cb.role_selection != ca.role_selection && cb.role_selection.is_some() {
                    d.push(issue(
                        Warning,
                        "role-selection",
                        format!(
                            "{} {}: role selection {} in {nb}, {} in {na}",
                            cb.sop_class,
                            cb.role,
                            or_none(cb.role_selection.as_ref()),
                            or_none(ca.role_selection.as_ref())
                        ),
                    ));
                }
                if cb.extended_negotiation.is_some()
                    && cb.extended_negotiation != ca.extended_negotiation
                {
                    d.push(issue(
                        Warning,
                        "extended-negotiation",
                        format!(
                            "{} {}: extended negotiation {} in {nb}, {} in {na}",
                            cb.sop_class,
                            cb.role,
                            or_none(cb.extended_negotiation.as_ref()),
                            or_none(ca.extended_negotiation.as_ref())
                        ),
                    ));
                }
                if cb.common_extended_negotiation.is_some()
                    && cb.common_extended_negotiation != ca.common_extended_negotiation
                {
                    d.push(issue(
                        Warning,
                        "extended-negotiation",
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
                            "statuses",
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
            "capability",
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
                "identity",
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
            "max-pdu",
            format!("max_pdu_send: {na} {sa_}, {nb} {sb_}"),
        ));
    }
    if let (Some(ma), Some(mb)) = (a.max_presentation_contexts, b.max_presentation_contexts)
        && mb > ma
    {
        d.push(issue(
            Warning,
            "contexts",
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
            "character-sets",
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
            "private-creators",
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
                "statuses",
                format!("{nb} returns {}, which {na} does not list", bad.join(", ")),
            ));
        }
    }
    if let (Some(wb), wa) = (b.async_window, a.async_window)
        && Some(wb) != wa
    {
        d.push(issue(
            Warning,
            "async-window",
            format!(
                "async window {wb} in {nb}, {} in {na}",
                or_none(wa.as_ref())
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
                "role",
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

/// What the initiator proposes: (capability, role it takes).
fn proposals(a: &Ae) -> Vec<(&Capability, Role)> {
    a.capability
        .iter()
        .filter_map(|c| match c.role {
            Role::Scu => Some((c, Role::Scu)),
            Role::Scp if c.role_selection.is_some_and(|r| r.scp) => Some((c, Role::Scp)),
            Role::Scp => None,
        })
        .collect()
}

fn issue(severity: IssueSeverity, topic: &'static str, message: String) -> Issue {
    Issue {
        severity,
        topic,
        message,
    }
}

fn pdu_limit(send: Option<u32>, receive: Option<u32>) -> u32 {
    match (send.filter(|&s| s > 0), receive.filter(|&r| r > 0)) {
        (Some(s), Some(r)) => s.min(r),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 0,
    }
}

/// Predicts one ordered pair; `None` when the initiator proposes nothing the acceptor
/// claims in any role (nothing to negotiate).
pub fn diff_pair(si: &Statement, i: &Ae, sa: &Statement, a: &Ae) -> Option<PairDiff> {
    let props = proposals(i);
    if !props
        .iter()
        .any(|(c, _)| a.claims_sop_class(&c.sop_class.uid))
    {
        return None;
    }
    let (ni, na) = (i.title.as_str(), a.title.as_str());
    let mut assoc = Vec::new();
    use IssueSeverity::{Failure, Info, Warning};

    // Association-level security.
    if !a.accepts_calling(ni) {
        assoc.push(issue(
            Failure,
            "ae-allow-list",
            format!("{na} accepts only calling AE titles {:?}; {ni} is not listed: A-ASSOCIATE-RJ (rejected-permanent, reason 3: calling AE title not recognized)",
                a.accept_calling_ae_titles.clone().unwrap_or_default()),
        ));
    }
    match (&i.tls, &a.tls) {
        (None, Some(t)) if t.required => assoc.push(issue(
            Failure,
            "tls",
            format!("{na} requires TLS; {ni} states no TLS support"),
        )),
        (Some(t), None) if t.required => assoc.push(issue(
            Failure,
            "tls",
            format!("{ni} requires TLS; {na} states no TLS support"),
        )),
        (Some(ti), Some(ta)) => {
            if !ti.versions.is_empty()
                && !ta.versions.is_empty()
                && !ti.versions.iter().any(|v| ta.versions.contains(v))
            {
                assoc.push(issue(
                    Failure,
                    "tls",
                    format!(
                        "no common TLS version: {ni} {:?}, {na} {:?}",
                        ti.versions, ta.versions
                    ),
                ));
            }
            if ta.client_auth == Some(ClientAuth::Required) {
                assoc.push(issue(
                    Info,
                    "tls",
                    format!("{na} requires a client certificate from {ni}"),
                ));
            }
            if ti.required != ta.required {
                let (who, other) = if ti.required { (ni, na) } else { (na, ni) };
                assoc.push(issue(
                    Info,
                    "tls",
                    format!(
                        "{who} requires TLS; {other} also accepts plain TCP: configure TLS on both"
                    ),
                ));
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            let who = if i.tls.is_some() { ni } else { na };
            assoc.push(issue(
                Info,
                "tls",
                format!(
                    "only {who} states TLS (optional there): the association will be plain TCP"
                ),
            ));
        }
        (None, None) => {}
    }

    // PDU sizes both ways.
    for (from, to, send, recv) in [
        (ni, na, i.max_pdu_send, a.max_pdu_receive),
        (na, ni, a.max_pdu_send, i.max_pdu_receive),
    ] {
        if let (Some(s), Some(r)) = (send, recv)
            && r > 0
            && (s == 0 || s > r)
        {
            let s = if s == 0 {
                "unlimited".to_owned()
            } else {
                s.to_string()
            };
            assoc.push(issue(
                Warning,
                "max-pdu",
                format!("{from} sends PDUs of up to {s} bytes; {to} advertises max_pdu_receive {r}: {from} must fragment to {r} (PS3.8 D.3.3.1), a sender that ignores the peer's maximum gets aborted"),
            ));
        }
    }

    // Context counts.
    let n = props.len();
    if let Some(m) = a.max_presentation_contexts
        && n > m as usize
    {
        assoc.push(issue(
            Warning,
            "contexts",
            format!("{ni} claims {n} SOP classes to propose; {na} accepts at most {m} contexts per association: proposing them all at once exceeds it"),
        ));
    }
    if let Some(k) = i.max_presentation_contexts
        && n > k as usize
    {
        assoc.push(issue(Info, "contexts", format!("{ni} proposes at most {k} contexts per association: its {n} SOP classes take several associations")));
    } else if n > 128 {
        assoc.push(issue(
            Info,
            "contexts",
            format!(
                "{ni} claims {n} SOP classes; an association carries at most 128 contexts (PS3.8)"
            ),
        ));
    }

    // Async window.
    if let Some(w) = i.async_window
        && w.invoked != 1
    {
        let answer = a.async_window.map_or(1, |aw| {
            if w.invoked == 0 {
                aw.performed
            } else if aw.performed == 0 {
                w.invoked
            } else {
                w.invoked.min(aw.performed)
            }
        });
        if answer == 1 {
            assoc.push(issue(
                Info,
                "async-window",
                format!(
                    "{ni} asks for {} outstanding operations; {na} works synchronously (window 1)",
                    if w.invoked == 0 {
                        "unlimited".to_owned()
                    } else {
                        w.invoked.to_string()
                    }
                ),
            ));
        }
    }

    // User identity.
    match (i.user_identity.is_empty(), a.user_identity.is_empty()) {
        (false, true) => assoc.push(issue(
            Info,
            "user-identity",
            format!("{ni} sends user identity; {na} states none and ignores it"),
        )),
        (true, false) => assoc.push(issue(
            Info,
            "user-identity",
            format!(
                "{na} accepts user identity ({}); {ni} sends none: fine unless {na} requires it",
                a.user_identity
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        (false, false) if !i.user_identity.iter().any(|t| a.user_identity.contains(t)) => assoc
            .push(issue(
                Warning,
                "user-identity",
                format!(
                    "no common user identity type: {ni} sends {:?}, {na} accepts {:?}",
                    i.user_identity, a.user_identity
                ),
            )),
        _ => {}
    }

    // Contexts.
    let mut contexts = Vec::new();
    for (ci, irole) in &props {
        contexts.push(predict_context(si, i, ci, *irole, sa, a));
    }
    // Character sets, both ways (the acceptor's direction only where data flows back).
    let iset = i.effective_character_sets();
    let aset = a.effective_character_sets();
    let extra: Vec<&String> = iset
        .iter()
        .filter(|c| !aset.contains(c) && c.as_str() != "ISO_IR 6")
        .collect();
    if !extra.is_empty() {
        assoc.push(issue(
            Warning,
            "character-sets",
            format!("{ni} may send text in {} which {na} does not declare ({}): names may be rejected or garbled", list(&extra), aset.join(", ")),
        ));
    }
    let flows_back = contexts.iter().any(|c| {
        c.accepted
            && (c.initiator_role == Role::Scp
                || c.sop_class.keyword.as_deref().is_some_and(|k| {
                    k.contains("Find") || k.contains("Get") || k.contains("Worklist")
                }))
    });
    let back: Vec<&String> = aset
        .iter()
        .filter(|c| !iset.contains(c) && c.as_str() != "ISO_IR 6")
        .collect();
    if flows_back && !back.is_empty() {
        assoc.push(issue(
            Warning,
            "character-sets",
            format!(
                "{na} may return text in {} which {ni} does not declare ({})",
                list(&back),
                iset.join(", ")
            ),
        ));
    }

    let association_fails = assoc.iter().any(|x| x.severity == Failure);
    let accepted = contexts.iter().filter(|c| c.accepted).count();
    let context_fail = contexts
        .iter()
        .any(|c| !c.accepted || c.issues.iter().any(|x| x.severity == Failure));
    let verdict = if association_fails || accepted == 0 {
        Verdict::Incompatible
    } else if context_fail {
        Verdict::Partial
    } else {
        Verdict::Compatible
    };
    Some(PairDiff {
        initiator: Endpoint {
            device: si.device.name.clone(),
            ae: i.title.clone(),
        },
        acceptor: Endpoint {
            device: sa.device.name.clone(),
            ae: a.title.clone(),
        },
        verdict,
        association: assoc,
        contexts,
        pdu_to_acceptor: pdu_limit(i.max_pdu_send, a.max_pdu_receive),
        pdu_to_initiator: pdu_limit(a.max_pdu_send, i.max_pdu_receive),
    })
}

fn list(l: &[&String]) -> String {
    l.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

fn predict_context(
    _si: &Statement,
    i: &Ae,
    ci: &Capability,
    irole: Role,
    _sa: &Statement,
    a: &Ae,
) -> ContextPrediction {
    use IssueSeverity::{Failure, Info, Warning};
    let (ni, na) = (i.title.as_str(), a.title.as_str());
    let sop = &ci.sop_class;
    let mut issues = Vec::new();
    let reject = |why: String, issues: Vec<Issue>| ContextPrediction {
        sop_class: sop.clone(),
        initiator_role: irole,
        accepted: false,
        transfer_syntax: None,
        common_transfer_syntaxes: Vec::new(),
        rejection: Some(why),
        issues,
    };
    let Some(ca) = a.capability(&sop.uid, irole.peer()) else {
        let other = a
            .capability(&sop.uid, irole)
            .map(|_| format!(" ({na} claims it only as {irole})"))
            .unwrap_or_default();
        return reject(
            format!(
                "abstract syntax not supported (result 3): {na} does not claim {sop} as {}{other}",
                irole.peer()
            ),
            issues,
        );
    };
    let common: Vec<UidRef> = ci
        .transfer_syntaxes
        .iter()
        .filter(|t| ca.has_transfer_syntax(&t.uid))
        .cloned()
        .collect();
    if common.is_empty() {
        return ContextPrediction {
            rejection: Some(format!(
                "transfer syntaxes not supported (result 4): {ni} proposes {}, {na} accepts {}",
                labels(&ci.transfer_syntaxes),
                labels(&ca.transfer_syntaxes)
            )),
            ..reject(String::new(), issues)
        };
    }
    let chosen = ca
        .preferred_transfer_syntaxes
        .iter()
        .find(|p| common.iter().any(|c| c.uid == p.uid))
        .or_else(|| common.first())
        .cloned();

    // Role selection.
    if irole == Role::Scp {
        // Reversed roles: the acceptor must honour the item.
        match ca.role_selection {
            Some(r) if r.scp => {}
            _ => {
                issues.push(issue(
                    Failure,
                    "role-selection",
                    format!("{ni} proposes {sop} with SCP role selection (it acts as SCP, e.g. C-GET storage); {na} does not state SCP role selection for it, so default roles apply and {na} cannot send it C-STORE sub-operations"),
                ));
            }
        }
    } else if let Some(ri) = ci.role_selection {
        match ca.role_selection {
            None => issues.push(issue(Info, "role-selection", format!("{ni} sends role selection (scu={}, scp={}); {na} states none: default roles apply", ri.scu, ri.scp))),
            Some(ra) if ri.scp && !ra.scp => issues.push(issue(Warning, "role-selection", format!("{ni} asks to act also as SCP of {sop}; {na} refuses that role"))),
            _ => {}
        }
    }

    // Extended negotiation.
    if let Some(ei) = &ci.extended_negotiation {
        let ea = ca.extended_negotiation.unwrap_or_default();
        if let Some(fi) = &ei.find {
            let fa = ea.find.unwrap_or_default();
            for (name, want, have) in [
                ("relational queries", fi.relational, fa.relational),
                (
                    "combined date-time matching",
                    fi.combined_date_time,
                    fa.combined_date_time,
                ),
                (
                    "fuzzy semantic person name matching",
                    fi.fuzzy_person_name,
                    fa.fuzzy_person_name,
                ),
                (
                    "timezone query adjustment",
                    fi.timezone_adjust,
                    fa.timezone_adjust,
                ),
            ] {
                if want == Some(true) && have != Some(true) {
                    issues.push(issue(
                        Warning,
                        "extended-negotiation",
                        format!("{ni} requests {name} for {sop}; {na} does not support it"),
                    ));
                }
            }
        }
        if let Some(ri) = &ei.retrieve
            && ri.relational == Some(true)
            && ea.retrieve.and_then(|r| r.relational) != Some(true)
        {
            issues.push(issue(
                Warning,
                "extended-negotiation",
                format!("{ni} requests relational retrieval for {sop}; {na} does not support it"),
            ));
        }
        if ei.storage.is_some() && ea.storage.is_none() {
            issues.push(issue(Info, "extended-negotiation", format!("{ni} negotiates storage options for {sop}; {na} returns none (level of support unknown)")));
        }
    }
    if let Some(sa) = ca.extended_negotiation.and_then(|e| e.storage)
        && sa.element_coercion == Some(1)
    {
        issues.push(issue(
            Info,
            "extended-negotiation",
            format!("{na} may coerce elements of {sop} instances it stores"),
        ));
    }

    // Storage commitment.
    if sop.uid == SOP_COMMITMENT
        && irole == Role::Scu
        && let (Some(sci), Some(sca)) = (&ci.storage_commitment, &ca.storage_commitment)
    {
        let common_report: Vec<ReportOn> = sca
            .report_on
            .iter()
            .copied()
            .filter(|r| sci.report_on.contains(r))
            .collect();
        if !sci.report_on.is_empty() && !sca.report_on.is_empty() && common_report.is_empty() {
            issues.push(issue(
                Failure,
                "storage-commitment",
                format!(
                    "{na} reports commitment results on {}; {ni} accepts them only on {}: results never arrive",
                    sca.report_on.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
                    sci.report_on.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        } else if common_report == [ReportOn::NewAssociation] {
            if !a.initiator || !i.acceptor {
                issues.push(issue(
                    Failure,
                    "storage-commitment",
                    format!("the report comes on a new association from {na} to {ni}, but {} is not an {}", if a.initiator { ni } else { na }, if a.initiator { "acceptor" } else { "initiator" }),
                ));
            } else if !i.accepts_calling(na) {
                issues.push(issue(Failure, "storage-commitment", format!("the report comes on a new association from {na}, which {ni}'s accept_calling_ae_titles rejects")));
            }
        }
        if let (Some(wi), Some(wa)) = (sci.max_wait_s, sca.max_wait_s)
            && wa > wi
        {
            issues.push(issue(
                Warning,
                "storage-commitment",
                format!("{na} may take up to {wa} s to report; {ni} waits {wi} s"),
            ));
        }
    } else if sop.uid == SOP_COMMITMENT
        && ca.storage_commitment.is_some()
        && ci.storage_commitment.is_none()
    {
        issues.push(issue(
            Info,
            "storage-commitment",
            format!(
                "{ni} states no report_on for storage commitment; {na} reports on {}",
                ca.storage_commitment
                    .as_ref()
                    .map(|s| s
                        .report_on
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
        ));
    }
    ContextPrediction {
        sop_class: sop.clone(),
        initiator_role: irole,
        accepted: true,
        transfer_syntax: chosen,
        common_transfer_syntaxes: common,
        rejection: None,
        issues,
    }
}

fn labels(l: &[UidRef]) -> String {
    l.iter().map(UidRef::label).collect::<Vec<_>>().join(", ")
}

/// The matrix and the details as text.
pub fn to_text(r: &DiffReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Compatibility matrix (rows: initiator AE, columns: acceptor AE; accepted/proposed contexts)\n"
    );
    let rows: Vec<&Endpoint> = r
        .endpoints
        .iter()
        .filter(|e| r.pairs.iter().any(|p| &p.initiator == *e))
        .collect();
    let cols: Vec<&Endpoint> = r
        .endpoints
        .iter()
        .filter(|e| r.pairs.iter().any(|p| &p.acceptor == *e))
        .collect();
    if rows.is_empty() {
        let _ = writeln!(o, "no initiator/acceptor pair has a SOP class in common");
    } else {
        let w0 = rows
            .iter()
            .map(|e| e.label().len())
            .max()
            .unwrap_or(0)
            .max(20);
        let cells = |row: &Endpoint, col: &Endpoint| match r.pair(row, col) {
            Some(p) => {
                let (a, n) = p.counts();
                format!("{} {a}/{n}", p.verdict.as_str())
            }
            None => "-".to_owned(),
        };
        let widths: Vec<usize> = cols
            .iter()
            .map(|c| {
                rows.iter()
                    .map(|rw| cells(rw, c).len())
                    .max()
                    .unwrap_or(1)
                    .max(c.label().len())
            })
            .collect();
        let _ = write!(o, "{:w0$}", "");
        for (c, w) in cols.iter().zip(&widths) {
            let _ = write!(o, "  {:w$}", c.label());
        }
        o.push('\n');
        for rw in &rows {
            let _ = write!(o, "{:w0$}", rw.label());
            for (c, w) in cols.iter().zip(&widths) {
                let _ = write!(o, "  {:w$}", cells(rw, c));
            }
            o.push('\n');
        }
    }
    for p in &r.pairs {
        let (a, n) = p.counts();
        let _ = writeln!(
            o,
            "\n{} -> {}: {} ({a}/{n} contexts accepted)",
            p.initiator.label(),
            p.acceptor.label(),
            p.verdict.as_str()
        );
        let pdu = |v: u32| {
            if v == 0 {
                "no limit stated".to_owned()
            } else {
                format!("{v} bytes")
            }
        };
        let _ = writeln!(
            o,
            "  max PDU: {} -> {}, {} -> {}",
            pdu(p.pdu_to_acceptor),
            p.acceptor.ae,
            pdu(p.pdu_to_initiator),
            p.initiator.ae
        );
        for x in &p.association {
            let _ = writeln!(o, "  {}: {}: {}", x.severity.as_str(), x.topic, x.message);
        }
        for c in &p.contexts {
            let roles = format!("{}->{}", c.initiator_role, c.initiator_role.peer());
            match (&c.transfer_syntax, &c.rejection) {
                (Some(ts), _) => {
                    let alt = if c.common_transfer_syntaxes.len() > 1 {
                        format!(" (common: {})", labels(&c.common_transfer_syntaxes))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "  {:<48} {roles}  accepted: {ts}{alt}",
                        c.sop_class.label()
                    );
                }
                (None, Some(why)) => {
                    let _ = writeln!(o, "  {:<48} {roles}  REJECTED: {why}", c.sop_class.label());
                }
                (None, None) => {}
            }
            for x in &c.issues {
                let _ = writeln!(
                    o,
                    "      {}: {}: {}",
                    x.severity.as_str(),
                    x.topic,
                    x.message
                );
            }
        }
    }
    for dr in &r.drift {
        let _ = writeln!(
            o,
            "\nAE {} in {} (claim) and {} (compared): {} difference(s)",
            dr.title,
            dr.claimed_by,
            dr.compared,
            dr.differences.len()
        );
        for x in &dr.differences {
            let _ = writeln!(o, "  {}: {}: {}", x.severity.as_str(), x.topic, x.message);
        }
    }
    let _ = writeln!(o, "\nAssumptions:");
    for a in &r.assumptions {
        let _ = writeln!(o, "  - {a}");
    }
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page: the matrix, then each pair in detail.
pub fn to_html(r: &DiffReport, title: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}th{{background:#f4f4f4}}\
.ok{{background:#d9f2d9}}.partial{{background:#fff1c2}}.fail{{background:#f8d0d0}}.none{{color:#999}}\
.failure{{color:#a00;font-weight:bold}}.warning{{color:#8a5a00}}.info{{color:#555}}code{{font-size:.9em}}\
</style></head><body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    );
    let rows: Vec<&Endpoint> = r
        .endpoints
        .iter()
        .filter(|e| r.pairs.iter().any(|p| &p.initiator == *e))
        .collect();
    let cols: Vec<&Endpoint> = r
        .endpoints
        .iter()
        .filter(|e| r.pairs.iter().any(|p| &p.acceptor == *e))
        .collect();
    o.push_str("<h2>Compatibility matrix</h2>\n<p>Rows: initiator AE; columns: acceptor AE; accepted/proposed presentation contexts.</p>\n<table><tr><th></th>");
    for c in &cols {
        let _ = write!(o, "<th>{}</th>", esc(&c.label()));
    }
    o.push_str("</tr>\n");
    for (ri, rw) in rows.iter().enumerate() {
        let _ = write!(o, "<tr><th>{}</th>", esc(&rw.label()));
        for c in &cols {
            match r
                .pairs
                .iter()
                .position(|p| &p.initiator == *rw && &p.acceptor == *c)
            {
                Some(k) => {
                    let p = &r.pairs[k];
                    let (a, n) = p.counts();
                    let class = match p.verdict {
                        Verdict::Compatible => "ok",
                        Verdict::Partial => "partial",
                        Verdict::Incompatible => "fail",
                    };
                    let _ = write!(
                        o,
                        "<td class=\"{class}\"><a href=\"#p{k}\">{} {a}/{n}</a></td>",
                        p.verdict.as_str()
                    );
                }
                None => o.push_str("<td class=\"none\">-</td>"),
            }
        }
        let _ = ri;
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
    for (k, p) in r.pairs.iter().enumerate() {
        let (a, n) = p.counts();
        let _ = writeln!(
            o,
            "<h2 id=\"p{k}\">{} &rarr; {}: {} ({a}/{n})</h2>",
            esc(&p.initiator.label()),
            esc(&p.acceptor.label()),
            p.verdict.as_str()
        );
        let pdu = |v: u32| {
            if v == 0 {
                "no limit stated".to_owned()
            } else {
                format!("{v} bytes")
            }
        };
        let _ = writeln!(
            o,
            "<p>Max PDU: {} to {}, {} to {}.</p>",
            pdu(p.pdu_to_acceptor),
            esc(&p.acceptor.ae),
            pdu(p.pdu_to_initiator),
            esc(&p.initiator.ae)
        );
        if !p.association.is_empty() {
            o.push_str("<ul>\n");
            for x in &p.association {
                let _ = writeln!(
                    o,
                    "<li class=\"{}\">{}: {}: {}</li>",
                    x.severity.as_str().to_lowercase(),
                    x.severity.as_str(),
                    x.topic,
                    esc(&x.message)
                );
            }
            o.push_str("</ul>\n");
        }
        o.push_str("<table><tr><th>SOP class</th><th>roles</th><th>prediction</th><th>common transfer syntaxes</th><th>notes</th></tr>\n");
        for c in &p.contexts {
            let (class, pred) = match (&c.transfer_syntax, &c.rejection) {
                (Some(ts), _) => ("ok", format!("accepted: <code>{}</code>", esc(ts.label()))),
                (None, why) => (
                    "fail",
                    format!("rejected: {}", esc(why.as_deref().unwrap_or(""))),
                ),
            };
            let notes: Vec<String> = c
                .issues
                .iter()
                .map(|x| {
                    format!(
                        "<span class=\"{}\">{}: {}</span>",
                        x.severity.as_str().to_lowercase(),
                        x.severity.as_str(),
                        esc(&x.message)
                    )
                })
                .collect();
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}&rarr;{}</td><td class=\"{class}\">{pred}</td><td>{}</td><td>{}</td></tr>",
                esc(c.sop_class.label()),
                c.initiator_role,
                c.initiator_role.peer(),
                esc(&labels(&c.common_transfer_syntaxes)),
                notes.join("<br>")
            );
        }
        o.push_str("</table>\n");
    }
    for dr in &r.drift {
        let _ = writeln!(
            o,
            "<h2>AE {} in {} (claim) and {} (compared)</h2>\n<ul>",
            esc(&dr.title),
            esc(&dr.claimed_by),
            esc(&dr.compared)
        );
        for x in &dr.differences {
            let _ = writeln!(
                o,
                "<li class=\"{}\">{}: {}: {}</li>",
                x.severity.as_str().to_lowercase(),
                x.severity.as_str(),
                x.topic,
                esc(&x.message)
            );
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<h2>Assumptions</h2>\n<ul>\n");
    for a in &r.assumptions {
        let _ = writeln!(o, "<li>{}</li>", esc(a));
    }
    o.push_str("</ul>\n</body></html>\n");
    o
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
