//! Negotiation and presentation contexts: SOP classes and roles proposed, accepted and
//! refused, the number of contexts, implementation ids, role selection, extended
//! negotiation and the asynchronous operations window.

use std::collections::HashMap;

use dicomtap_wire::Severity::{Error, Warning};
use dicomtap_wire::Side;
use dicomtap_wire::assoc::{
    AssociateAccept, AssociateRequest, ContextResult, ProposedContext, UserInformation,
};

use super::{Rule, RuleId};
use crate::conformance::checker::{Conn, Ctx, Party, Pending, label, labels};
use crate::statement::{
    Ae, Capability, CommonExtendedNegotiation, ExtendedNegotiation, Role, Statement,
};

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 8] = [
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
        id: RuleId::TooManyContexts,
        severity: Warning,
        claim: "ae.max_presentation_contexts",
        summary: "The device proposed or accepted more presentation contexts in one association than its statement claims.",
        why: "Acceptors with a lower limit reject or truncate the association; knowing the real number matters when pairing the device with a peer that has a small context table.",
        detection: "The number of contexts in the A-ASSOCIATE-RQ (requestor) and the number accepted in the A-ASSOCIATE-AC (acceptor) are compared with max_presentation_contexts.",
        remedy: "Reduce the SOP classes or transfer syntaxes proposed per association, or correct the statement.",
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
];

/// The Implementation Class UID and Version Name each party sent first, and on which
/// association.
pub(crate) type ImplementationsSeen = HashMap<Party, (Option<String>, Option<String>, u64)>;

/// The requestor proposed more contexts than it claims to.
pub(crate) fn contexts_proposed(ae: &Ae, rq: &AssociateRequest, pending: &mut Pending) {
    if let Some(max) = ae.max_presentation_contexts
        && rq.contexts.len() as u64 > u64::from(max)
    {
        pending.push((
            RuleId::TooManyContexts,
            String::new(),
            format!("max_presentation_contexts = {max}"),
            format!("proposed {} presentation contexts", rq.contexts.len()),
        ));
    }
}

/// The capability `side` uses for context `pc`: the requestor is the SCU and the
/// acceptor the SCP, unless role selection says otherwise — the requestor's proposal for
/// the requestor, the acceptor's reply (`ac`) for the acceptor, and that only when the
/// requestor proposed one. Each role without a claim is a finding.
pub(crate) fn context_capability<'a>(
    ae: &'a Ae,
    s: Option<&Statement>,
    side: Side,
    rq: &AssociateRequest,
    ac: Option<&AssociateAccept>,
    pc: &ProposedContext,
    pending: &mut Pending,
) -> Option<&'a Capability> {
    let sop = pc.abstract_syntax.as_str();
    let proposed = rq.user_info.role_selection(sop);
    let (selection, role, did) = match side {
        Side::Requestor => (proposed, Role::Scu, "proposed"),
        Side::Acceptor => (
            proposed.and(ac.and_then(|ac| ac.user_info.role_selection(sop))),
            Role::Scp,
            "accepted",
        ),
    };
    let roles = match selection {
        Some(r) if r.scu || r.scp => selected_roles(r.scu, r.scp, role),
        _ => vec![role],
    };
    claimed_capability(ae, s, sop, &roles, did, pc.id, pending)
}

/// Role selection, extended negotiation and the asynchronous operations window the
/// requestor proposed.
pub(crate) fn user_info_proposed(
    ae: &Ae,
    s: Option<&Statement>,
    rq: &AssociateRequest,
    pending: &mut Pending,
) {
    // Role selection and extended negotiation sent.
    for r in &rq.user_info.role_selections {
        let claim = ae
            .capability
            .iter()
            .filter(|cap| cap.sop_class.uid == r.sop_class)
            .find_map(|cap| cap.role_selection);
        let bad = match claim {
            None => Some("none".to_string()),
            Some(cl) if (cl.scu, cl.scp) != (r.scu, r.scp) => {
                Some(format!("{{ scu = {}, scp = {} }}", cl.scu, cl.scp))
            }
            Some(_) => None,
        };
        if let Some(cl) = bad {
            pending.push((
                RuleId::RoleSelectionDiffers,
                r.sop_class.clone(),
                format!("role_selection for {} = {cl}", label(s, &r.sop_class)),
                format!(
                    "proposed role selection scu = {}, scp = {} for {}",
                    r.scu,
                    r.scp,
                    label(s, &r.sop_class)
                ),
            ));
        }
    }
    let mut proposed_classes: Vec<&str> = rq
        .contexts
        .iter()
        .map(|pc| pc.abstract_syntax.as_str())
        .collect();
    proposed_classes.sort_unstable();
    proposed_classes.dedup();
    for sop in &proposed_classes {
        let claim = ae
            .capability
            .iter()
            .filter(|cap| cap.sop_class.uid == *sop)
            .find_map(|cap| cap.role_selection);
        if let Some(cl) = claim
            && rq.user_info.role_selection(sop).is_none()
        {
            pending.push((
                RuleId::RoleSelectionDiffers,
                (*sop).to_string(),
                format!(
                    "role_selection for {} = {{ scu = {}, scp = {} }}",
                    label(s, sop),
                    cl.scu,
                    cl.scp
                ),
                format!("no role selection proposed for {}", label(s, sop)),
            ));
        }
        let ext_claim = ae
            .capabilities_for(sop, Role::Scu)
            .chain(ae.capability.iter().filter(|cap| cap.sop_class.uid == *sop))
            .find_map(|cap| cap.extended_negotiation);
        let sent = rq
            .user_info
            .extended_negotiation
            .iter()
            .find(|x| x.sop_class == *sop);
        ext_neg_compared(
            s,
            sop,
            ext_claim,
            sent,
            "proposed",
            format!("no extended negotiation proposed for {}", label(s, sop)),
            pending,
        );
    }
    // SOP class common extended negotiation (0x57): only the requestor sends it.
    let mut common_classes: Vec<&str> = proposed_classes.clone();
    common_classes.extend(
        rq.user_info
            .common_extended_negotiation
            .iter()
            .map(|x| x.sop_class.as_str()),
    );
    common_classes.sort_unstable();
    common_classes.dedup();
    for sop in &common_classes {
        let claim = ae
            .capabilities_for(sop, Role::Scu)
            .chain(ae.capability.iter().filter(|cap| cap.sop_class.uid == *sop))
            .find_map(|cap| cap.common_extended_negotiation.as_ref());
        let sent = rq
            .user_info
            .common_extended_negotiation
            .iter()
            .find(|x| x.sop_class == *sop);
        let key = format!("{sop} common");
        let shown = |c: &CommonExtendedNegotiation| {
            let related: Vec<&str> = c
                .related_general_sop_classes
                .iter()
                .map(|u| u.uid.as_str())
                .collect();
            format!(
                "common_extended_negotiation for {} = {{ service_class = {}, related_general_sop_classes = {} }}",
                label(s, sop),
                c.service_class,
                labels(s, &related)
            )
        };
        match (claim, sent) {
            (None, Some(x)) => {
                let related: Vec<&str> = x
                    .related_general_sop_classes
                    .iter()
                    .map(String::as_str)
                    .collect();
                pending.push((
                    RuleId::ExtendedNegotiationDiffers,
                    key,
                    format!("common_extended_negotiation for {}: none", label(s, sop)),
                    format!(
                        "proposed common extended negotiation for {}: service class {}, related general SOP classes {}",
                        label(s, sop),
                        x.service_class,
                        labels(s, &related)
                    ),
                ));
            }
            (Some(cl), None) => pending.push((
                RuleId::ExtendedNegotiationDiffers,
                key,
                shown(cl),
                format!(
                    "no common extended negotiation proposed for {}",
                    label(s, sop)
                ),
            )),
            (Some(cl), Some(x)) => {
                let d = common_ext_neg_diffs(s, cl, x);
                if !d.is_empty() {
                    pending.push((
                        RuleId::ExtendedNegotiationDiffers,
                        key,
                        shown(cl),
                        format!(
                            "proposed common extended negotiation for {} with {}",
                            label(s, sop),
                            d.join(", ")
                        ),
                    ));
                }
            }
            (None, None) => {}
        }
    }
    // Asynchronous operations window.
    let eff = |w: Option<(u16, u16)>| w.unwrap_or((1, 1));
    let claim = ae.async_window.map(|w| (w.invoked, w.performed));
    if eff(rq.user_info.async_window) != eff(claim) {
        pending.push((
            RuleId::AsyncWindowDiffers,
            String::new(),
            claim.map_or_else(
                || "async_window: not negotiated".to_string(),
                |(i, p)| format!("async_window = {{ invoked = {i}, performed = {p} }}"),
            ),
            rq.user_info.async_window.map_or_else(
                || "no asynchronous operations window proposed".to_string(),
                |(i, p)| format!("proposed invoked = {i}, performed = {p}"),
            ),
        ));
    }
}

impl Ctx<'_> {
    /// Implementation Class UID and Version Name against the claim, or against what the
    /// party sent first when the statement does not say.
    pub(crate) fn implementation_ids(
        &mut self,
        c: &Conn,
        p: Party,
        ae: &Ae,
        ui: &UserInformation,
        pending: &mut Pending,
    ) {
        let seen = self.g.impl_seen.get(&p).cloned();
        for (rule, claim, observed, first) in [
            (
                RuleId::ImplementationUidChanged,
                ae.implementation_class_uid.clone(),
                ui.implementation_class_uid.clone(),
                seen.as_ref().map(|s| (s.0.clone(), s.2)),
            ),
            (
                RuleId::ImplementationVersionChanged,
                ae.implementation_version_name.clone(),
                ui.implementation_version_name.clone(),
                seen.as_ref().map(|s| (s.1.clone(), s.2)),
            ),
        ] {
            let what = if rule == RuleId::ImplementationUidChanged {
                ("implementation_class_uid", "Implementation Class UID")
            } else {
                ("implementation_version_name", "Implementation Version Name")
            };
            let shown = |v: &Option<String>| {
                v.as_deref()
                    .map_or_else(|| "none".to_string(), |v| format!("{v:?}"))
            };
            match (claim, first) {
                (Some(cl), _) if observed.as_deref() != Some(cl.as_str()) => pending.push((
                    rule,
                    observed.clone().unwrap_or_default(),
                    format!("{} = {cl:?}", what.0),
                    format!("sent {} {}", what.1, shown(&observed)),
                )),
                (None, Some((prev, assoc))) if prev != observed => pending.push((
                    rule,
                    observed.clone().unwrap_or_default(),
                    format!(
                        "{}: not stated; first seen {} (association #{assoc})",
                        what.0,
                        shown(&prev)
                    ),
                    format!("sent {} {}", what.1, shown(&observed)),
                )),
                _ => {}
            }
        }
        self.g.impl_seen.entry(p).or_insert((
            ui.implementation_class_uid.clone(),
            ui.implementation_version_name.clone(),
            c.id,
        ));
    }
}

/// The acceptor accepted more contexts than it claims to.
pub(crate) fn contexts_accepted(ae: &Ae, ac: &AssociateAccept, pending: &mut Pending) {
    let accepted = ac.results.iter().filter(|r| r.accepted()).count();
    if let Some(max) = ae.max_presentation_contexts
        && accepted as u64 > u64::from(max)
    {
        pending.push((
            RuleId::TooManyContexts,
            String::new(),
            format!("max_presentation_contexts = {max}"),
            format!("accepted {accepted} presentation contexts"),
        ));
    }
}

/// The acceptor refused a context it claims as SCP with a claimed transfer syntax
/// proposed.
pub(crate) fn context_refused(
    ae: &Ae,
    s: Option<&Statement>,
    pc: &ProposedContext,
    r: &ContextResult,
    pending: &mut Pending,
) {
    let sop = pc.abstract_syntax.as_str();
    if let Some(cap) = ae.capability(sop, Role::Scp) {
        let claimed: Vec<&str> = pc
            .transfer_syntaxes
            .iter()
            .filter(|t| cap.has_transfer_syntax(t))
            .map(String::as_str)
            .collect();
        if !claimed.is_empty() {
            pending.push((
                RuleId::SopClassClaimedButRefused,
                sop.to_string(),
                format!(
                    "capability {} SCP with transfer_syntaxes including {}",
                    label(s, sop),
                    labels(s, &claimed)
                ),
                format!(
                    "refused context {} ({}): {}",
                    pc.id,
                    label(s, sop),
                    r.result_name
                ),
            ));
        }
    }
}

/// Role selection, extended negotiation and asynchronous operations window replies.
pub(crate) fn user_info_answered(
    ae: &Ae,
    s: Option<&Statement>,
    rq: &AssociateRequest,
    ac: &AssociateAccept,
    contexts: &HashMap<u8, (String, Option<String>)>,
    pending: &mut Pending,
) {
    // Role selection replies.
    for x in &ac.user_info.role_selections {
        let claim = ae
            .capability
            .iter()
            .filter(|cap| cap.sop_class.uid == x.sop_class)
            .find_map(|cap| cap.role_selection);
        let bad = match claim {
            Some(cl) => (x.scu && !cl.scu) || (x.scp && !cl.scp),
            None => {
                (x.scu && ae.capability(&x.sop_class, Role::Scp).is_none())
                    || (x.scp && ae.capability(&x.sop_class, Role::Scu).is_none())
            }
        };
        if bad {
            pending.push((
                RuleId::RoleSelectionDiffers,
                x.sop_class.clone(),
                claim.map_or_else(
                    || {
                        format!(
                            "role_selection for {}: none; capabilities {}",
                            label(s, &x.sop_class),
                            roles_claimed(ae, &x.sop_class)
                        )
                    },
                    |cl| {
                        format!(
                            "role_selection for {} = {{ scu = {}, scp = {} }}",
                            label(s, &x.sop_class),
                            cl.scu,
                            cl.scp
                        )
                    },
                ),
                format!(
                    "accepted role selection scu = {}, scp = {} for {}",
                    x.scu,
                    x.scp,
                    label(s, &x.sop_class)
                ),
            ));
        }
    }
    // Extended negotiation replies (only to what was proposed).
    for prop in &rq.user_info.extended_negotiation {
        let sop = prop.sop_class.as_str();
        if !contexts.values().any(|(a, _)| a == sop) {
            continue;
        }
        let claim = ae
            .capabilities_for(sop, Role::Scp)
            .chain(ae.capability.iter().filter(|cap| cap.sop_class.uid == sop))
            .find_map(|cap| cap.extended_negotiation);
        let reply = ac
            .user_info
            .extended_negotiation
            .iter()
            .find(|x| x.sop_class == sop);
        ext_neg_compared(
            s,
            sop,
            claim,
            reply,
            "answered",
            format!(
                "did not answer the extended negotiation proposed for {}",
                label(s, sop)
            ),
            pending,
        );
    }
    // Asynchronous operations window reply.
    let eff = |w: Option<(u16, u16)>| w.unwrap_or((1, 1));
    let claim = ae.async_window.map(|w| (w.invoked, w.performed));
    let expected = match (rq.user_info.async_window, claim) {
        (None, _) => None,
        (Some(_), None) => None,
        (Some((pi, pp)), Some((ci, cp))) => Some((min0(pi, ci), min0(pp, cp))),
    };
    if eff(ac.user_info.async_window) != eff(expected)
        || (rq.user_info.async_window.is_none() && ac.user_info.async_window.is_some())
    {
        pending.push((
            RuleId::AsyncWindowDiffers,
            String::new(),
            claim.map_or_else(
                || "async_window: not negotiated".to_string(),
                |(i, p)| format!("async_window = {{ invoked = {i}, performed = {p} }}"),
            ),
            format!(
                "answered {} to a proposal of {}",
                ac.user_info.async_window.map_or_else(
                    || "nothing".to_string(),
                    |(i, p)| format!("invoked = {i}, performed = {p}")
                ),
                rq.user_info.async_window.map_or_else(
                    || "nothing".to_string(),
                    |(i, p)| format!("invoked = {i}, performed = {p}")
                )
            ),
        ));
    }
}

/// The roles a side takes for a SOP class under role selection `(scu, scp)` (the
/// requestor's roles as proposed or accepted): `as_scu` is the side's role when the
/// requestor is the SCU (SCU for the requestor, SCP for the acceptor).
fn selected_roles(scu: bool, scp: bool, as_scu: Role) -> Vec<Role> {
    let mut v = Vec::new();
    if scu {
        v.push(as_scu);
    }
    if scp {
        v.push(as_scu.peer());
    }
    v
}

/// A claimed extended negotiation (0x56) against the one sent (`did`: "proposed" or
/// "answered"; `none_sent`: what was observed when a claimed one was not sent).
fn ext_neg_compared(
    s: Option<&Statement>,
    sop: &str,
    claim: Option<ExtendedNegotiation>,
    sent: Option<&dicomtap_wire::assoc::ExtendedNegotiation>,
    did: &str,
    none_sent: String,
    pending: &mut Pending,
) {
    match (claim, sent) {
        (None, Some(x)) => pending.push((
            RuleId::ExtendedNegotiationDiffers,
            sop.to_string(),
            format!("extended_negotiation for {}: none", label(s, sop)),
            format!(
                "{did} extended negotiation {} for {}",
                x.info,
                label(s, sop)
            ),
        )),
        (Some(cl), None) if cl != ExtendedNegotiation::default() => pending.push((
            RuleId::ExtendedNegotiationDiffers,
            sop.to_string(),
            format!("extended_negotiation for {} = {cl}", label(s, sop)),
            none_sent,
        )),
        (Some(cl), Some(x)) => {
            let d = ext_neg_diffs(&cl, &hex_bytes(&x.info));
            if !d.is_empty() {
                pending.push((
                    RuleId::ExtendedNegotiationDiffers,
                    sop.to_string(),
                    format!("extended_negotiation for {} = {cl}", label(s, sop)),
                    format!("{did} {} for {}", d.join(", "), label(s, sop)),
                ));
            }
        }
        _ => {}
    }
}

fn roles_claimed(ae: &Ae, sop: &str) -> String {
    let roles: Vec<&str> = ae
        .capability
        .iter()
        .filter(|c| c.sop_class.uid == sop)
        .map(|c| c.role.as_str())
        .collect();
    if roles.is_empty() {
        "none".to_string()
    } else {
        roles.join(", ")
    }
}

/// The first capability of `ae` for `sop` in one of `roles`; each role without one is a
/// `sop-class-not-claimed` finding (`did`: what the AE did with context `pc_id`).
fn claimed_capability<'a>(
    ae: &'a Ae,
    s: Option<&Statement>,
    sop: &str,
    roles: &[Role],
    did: &str,
    pc_id: u8,
    pending: &mut Pending,
) -> Option<&'a Capability> {
    let mut cap = None;
    for role in roles {
        match ae.capability(sop, *role) {
            Some(found) => {
                cap.get_or_insert(found);
            }
            None => pending.push((
                RuleId::SopClassNotClaimed,
                format!("{sop} {role}"),
                format!("no capability for {} as {role}", label(s, sop)),
                format!("{did} {} as {role} (context {pc_id})", label(s, sop)),
            )),
        }
    }
    cap
}
fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// 0 = unlimited in async windows.
fn min0(a: u16, b: u16) -> u16 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// Differences between a claimed extended negotiation and the bytes sent.
fn ext_neg_diffs(claim: &ExtendedNegotiation, info: &[u8]) -> Vec<String> {
    let mut d = Vec::new();
    let byte = |i: usize| info.get(i).copied();
    let mut num = |name: &str, want: Option<u8>, i: usize| {
        if let Some(w) = want
            && byte(i) != Some(w)
        {
            d.push(format!(
                "{name} {} (claimed {w})",
                byte(i).map_or_else(|| "absent".to_string(), |b| b.to_string())
            ));
        }
    };
    if let Some(s) = &claim.storage {
        num("level_of_support", s.level_of_support, 0);
        num("digital_signature", s.digital_signature, 2);
        num("element_coercion", s.element_coercion, 4);
    }
    let mut flag = |name: &str, want: Option<bool>, i: usize| {
        if let Some(w) = want {
            let got = byte(i).map(|b| b != 0);
            if got != Some(w) {
                d.push(format!(
                    "{name} {} (claimed {w})",
                    got.map_or_else(|| "absent".to_string(), |b| b.to_string())
                ));
            }
        }
    };
    if let Some(f) = &claim.find {
        flag("relational", f.relational, 0);
        flag("combined_date_time", f.combined_date_time, 1);
        flag("fuzzy_person_name", f.fuzzy_person_name, 2);
        flag("timezone_adjust", f.timezone_adjust, 3);
    }
    if let Some(r) = &claim.retrieve {
        flag("relational", r.relational, 0);
    }
    d
}

/// Differences between a claimed and a sent SOP class common extended negotiation:
/// the service class, and related general SOP classes missing or extra (order is not
/// significant).
fn common_ext_neg_diffs(
    s: Option<&Statement>,
    claim: &CommonExtendedNegotiation,
    sent: &dicomtap_wire::assoc::CommonExtendedNegotiation,
) -> Vec<String> {
    let mut d = Vec::new();
    if claim.service_class != sent.service_class {
        d.push(format!(
            "service class {} (claimed {})",
            sent.service_class, claim.service_class
        ));
    }
    let extra: Vec<&str> = sent
        .related_general_sop_classes
        .iter()
        .filter(|u| {
            !claim
                .related_general_sop_classes
                .iter()
                .any(|c| &c.uid == *u)
        })
        .map(String::as_str)
        .collect();
    let missing: Vec<&str> = claim
        .related_general_sop_classes
        .iter()
        .filter(|c| !sent.related_general_sop_classes.contains(&c.uid))
        .map(|c| c.uid.as_str())
        .collect();
    if !extra.is_empty() {
        d.push(format!(
            "related general SOP classes {} not claimed",
            labels(s, &extra)
        ));
    }
    if !missing.is_empty() {
        d.push(format!(
            "claimed related general SOP classes {} not sent",
            labels(s, &missing)
        ));
    }
    d
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{FindExtNeg, StorageExtNeg};

    fn rq(contexts: usize) -> AssociateRequest {
        AssociateRequest {
            protocol_version: 1,
            called_ae: "PACS".into(),
            calling_ae: "MOD".into(),
            application_context: None,
            contexts: (0..contexts)
                .map(|i| ProposedContext {
                    id: (2 * i + 1) as u8,
                    abstract_syntax: "1.2.840.10008.5.1.4.1.1.7".into(),
                    transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
                })
                .collect(),
            user_info: UserInformation::default(),
            unknown: Vec::new(),
        }
    }

    #[test]
    fn async_window_zero_is_unlimited() {
        assert_eq!(min0(0, 5), 5);
        assert_eq!(min0(3, 0), 3);
        assert_eq!(min0(3, 5), 3);
        assert_eq!(min0(0, 0), 0);
    }

    #[test]
    fn extended_negotiation_bytes_are_compared_field_by_field() {
        assert_eq!(hex_bytes("0102ff"), vec![1, 2, 255]);
        let claim = ExtendedNegotiation {
            storage: Some(StorageExtNeg {
                level_of_support: Some(2),
                digital_signature: None,
                element_coercion: Some(1),
            }),
            find: None,
            retrieve: None,
        };
        assert!(ext_neg_diffs(&claim, &[2, 0, 0, 0, 1, 0]).is_empty());
        assert_eq!(
            ext_neg_diffs(&claim, &[3, 0, 0]),
            vec![
                "level_of_support 3 (claimed 2)".to_string(),
                "element_coercion absent (claimed 1)".to_string()
            ]
        );
        let find = ExtendedNegotiation {
            storage: None,
            find: Some(FindExtNeg {
                relational: Some(true),
                ..FindExtNeg::default()
            }),
            retrieve: None,
        };
        assert_eq!(
            ext_neg_diffs(&find, &[0]),
            vec!["relational false (claimed true)".to_string()]
        );
    }

    #[test]
    fn more_contexts_than_claimed_and_unclaimed_sop_classes() {
        let ae = Ae {
            max_presentation_contexts: Some(1),
            ..Ae::default()
        };
        let mut pending = Vec::new();
        contexts_proposed(&ae, &rq(1), &mut pending);
        assert!(pending.is_empty());
        let two = rq(2);
        contexts_proposed(&ae, &two, &mut pending);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RuleId::TooManyContexts);
        // No capability at all: the proposed SCU role is not claimed.
        let cap = context_capability(
            &ae,
            None,
            Side::Requestor,
            &two,
            None,
            &two.contexts[0],
            &mut pending,
        );
        assert!(cap.is_none());
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[1].0, RuleId::SopClassNotClaimed);
        assert!(
            pending[1].3.contains("as SCU (context 1)"),
            "{}",
            pending[1].3
        );
    }
}
