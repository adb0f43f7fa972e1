//! The pair prediction: association-level checks and one presentation context at a time.

use dicomtap_wire::syntax::Encoding;
use dicomtap_wire::uid::STORAGE_COMMITMENT_PUSH_MODEL;

use super::*;

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
            Topic::AeAllowList,
            format!("{na} accepts only calling AE titles {}; {ni} is not listed: A-ASSOCIATE-RJ (rejected-permanent, reason 3: calling AE title not recognized)",
                a.accept_calling_ae_titles.as_deref().unwrap_or_default().join(", ")),
        ));
    }
    match (&i.tls, &a.tls) {
        (None, Some(t)) if t.required => assoc.push(issue(
            Failure,
            Topic::Tls,
            format!("{na} requires TLS; {ni} states no TLS support"),
        )),
        (Some(t), None) if t.required => assoc.push(issue(
            Failure,
            Topic::Tls,
            format!("{ni} requires TLS; {na} states no TLS support"),
        )),
        (Some(ti), Some(ta)) => {
            if !ti.versions.is_empty()
                && !ta.versions.is_empty()
                && !ti.versions.iter().any(|v| ta.versions.contains(v))
            {
                assoc.push(issue(
                    Failure,
                    Topic::Tls,
                    format!(
                        "no common TLS version: {ni} {}, {na} {}",
                        ti.versions.join(", "),
                        ta.versions.join(", ")
                    ),
                ));
            }
            if ta.client_auth == Some(ClientAuth::Required) {
                assoc.push(issue(
                    Info,
                    Topic::Tls,
                    format!("{na} requires a client certificate from {ni}"),
                ));
            }
            if ti.required != ta.required {
                let (who, other) = if ti.required { (ni, na) } else { (na, ni) };
                assoc.push(issue(
                    Info,
                    Topic::Tls,
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
                Topic::Tls,
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
                Topic::MaxPdu,
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
            Topic::Contexts,
            format!("{ni} claims {n} SOP classes to propose; {na} accepts at most {m} contexts per association: proposing them all at once exceeds it"),
        ));
    }
    if let Some(k) = i.max_presentation_contexts
        && n > k as usize
    {
        assoc.push(issue(Info, Topic::Contexts, format!("{ni} proposes at most {k} contexts per association: its {n} SOP classes take several associations")));
    } else if n > 128 {
        assoc.push(issue(
            Info,
            Topic::Contexts,
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
                Topic::AsyncWindow,
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
            Topic::UserIdentity,
            format!("{ni} sends user identity; {na} states none and ignores it"),
        )),
        (true, false) => assoc.push(issue(
            Info,
            Topic::UserIdentity,
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
                Topic::UserIdentity,
                format!(
                    "no common user identity type: {ni} sends {}, {na} accepts {}",
                    identities(&i.user_identity),
                    identities(&a.user_identity)
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
            Topic::CharacterSets,
            format!("{ni} may send text in {} which {na} does not declare ({}): names may be rejected or garbled", few(&extra), few(&aset.iter().collect::<Vec<_>>())),
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
            Topic::CharacterSets,
            format!(
                "{na} may return text in {} which {ni} does not declare ({})",
                few(&back),
                few(&iset.iter().collect::<Vec<_>>())
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
        rejection_result: Some(3),
        proposed_transfer_syntaxes: Vec::new(),
        acceptor_transfer_syntaxes: Vec::new(),
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
            rejection_result: Some(4),
            proposed_transfer_syntaxes: ci.transfer_syntaxes.clone(),
            acceptor_transfer_syntaxes: ca.transfer_syntaxes.clone(),
            ..reject(String::new(), issues)
        };
    }
    let chosen = ca
        .preferred_transfer_syntaxes
        .iter()
        .find(|p| common.iter().any(|c| c.uid == p.uid))
        .or_else(|| common.first())
        .cloned();

    // Compression and lossy compression.
    let offered: Vec<UidRef> = ci
        .transfer_syntaxes
        .iter()
        .filter(|t| is_compressed(&t.uid))
        .cloned()
        .collect();
    if !offered.is_empty() && !common.iter().any(|t| is_compressed(&t.uid)) {
        issues.push(issue(
            Warning,
            Topic::Compression,
            format!(
                "{ni} proposes compressed syntaxes ({}); {na} accepts only {}: compressed data must be decompressed before sending (more bandwidth)",
                brief(&offered),
                brief(&ca.transfer_syntaxes)
            ),
        ));
    }
    if let Some(ch) = chosen.as_ref().filter(|t| is_lossy(&t.uid)) {
        if let Some(lossless) = common.iter().find(|t| !is_lossy(&t.uid)) {
            if ca
                .preferred_transfer_syntaxes
                .iter()
                .any(|p| p.uid == ch.uid)
            {
                issues.push(issue(
                    Warning,
                    Topic::Lossy,
                    format!("{na} prefers the lossy {ch} although {lossless} is common: images arrive lossy-compressed"),
                ));
            }
        } else if ci.transfer_syntaxes.iter().any(|t| !is_lossy(&t.uid)) {
            issues.push(issue(
                Warning,
                Topic::Lossy,
                format!(
                    "only lossy syntaxes are common ({}); {na} accepts none of {ni}'s lossless ones: images can only be sent lossy-compressed",
                    brief(&common)
                ),
            ));
        }
    }

    // Role selection.
    if irole == Role::Scp {
        // Reversed roles: the acceptor must honour the item.
        match ca.role_selection {
            Some(r) if r.scp => {}
            _ => {
                issues.push(issue(
                    Failure,
                    Topic::RoleSelection,
                    format!("{ni} proposes SCP role selection (it acts as SCP, e.g. C-GET storage); {na} does not state SCP role selection for this SOP class, so default roles apply and {na} cannot send it C-STORE sub-operations"),
                ));
            }
        }
    } else if let Some(ri) = ci.role_selection {
        match ca.role_selection {
            None => issues.push(issue(Info, Topic::RoleSelection, format!("{ni} sends role selection (scu={}, scp={}); {na} states none: default roles apply", ri.scu, ri.scp))),
            Some(ra) if ri.scp && !ra.scp => issues.push(issue(Warning, Topic::RoleSelection, format!("{ni} asks to act also as SCP; {na} refuses that role"))),
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
                        Topic::ExtendedNegotiation,
                        format!("{ni} requests {name}; {na} does not support it"),
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
                Topic::ExtendedNegotiation,
                format!("{ni} requests relational retrieval; {na} does not support it"),
            ));
        }
        if ei.storage.is_some() && ea.storage.is_none() {
            issues.push(issue(
                Info,
                Topic::ExtendedNegotiation,
                format!(
                    "{ni} negotiates storage options; {na} returns none (level of support unknown)"
                ),
            ));
        }
    }
    if let Some(sa) = ca.extended_negotiation.and_then(|e| e.storage)
        && sa.element_coercion == Some(1)
    {
        issues.push(issue(
            Info,
            Topic::ExtendedNegotiation,
            format!("{na} may coerce elements of the instances it stores"),
        ));
    }

    // Storage commitment.
    if sop.uid == STORAGE_COMMITMENT_PUSH_MODEL
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
                Topic::StorageCommitment,
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
                    Topic::StorageCommitment,
                    format!("the report comes on a new association from {na} to {ni}, but {} is not an {}", if a.initiator { ni } else { na }, if a.initiator { "acceptor" } else { "initiator" }),
                ));
            } else if !i.accepts_calling(na) {
                issues.push(issue(Failure, Topic::StorageCommitment, format!("the report comes on a new association from {na}, which {ni}'s accept_calling_ae_titles rejects")));
            }
        }
        if let (Some(wi), Some(wa)) = (sci.max_wait_s, sca.max_wait_s)
            && wa > wi
        {
            issues.push(issue(
                Warning,
                Topic::StorageCommitment,
                format!("{na} may take up to {wa} s to report; {ni} waits {wi} s"),
            ));
        }
    } else if sop.uid == STORAGE_COMMITMENT_PUSH_MODEL
        && ca.storage_commitment.is_some()
        && ci.storage_commitment.is_none()
    {
        issues.push(issue(
            Info,
            Topic::StorageCommitment,
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
        rejection_result: None,
        proposed_transfer_syntaxes: Vec::new(),
        acceptor_transfer_syntaxes: Vec::new(),
        issues,
    }
}

fn identities(l: &[UserIdentityType]) -> String {
    l.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(", ")
}

/// Pixel data compressed (encapsulated) or the whole data set deflated.
pub(super) fn is_compressed(uid: &str) -> bool {
    matches!(
        dicomtap_wire::syntax::encoding_of(uid),
        Encoding::Encapsulated | Encoding::DeflatedExplicitVrLittleEndian
    )
}

/// Transfer syntaxes whose compression is, or may be, lossy (PS3.5 8.2, 10): JPEG
/// processes other than the lossless ones, JPEG-LS near-lossless, JPEG 2000 and HTJ2K
/// without "lossless only", MPEG-2/4 and HEVC video, JPEG XL other than lossless.
pub(super) fn is_lossy(uid: &str) -> bool {
    let Some(rest) = uid.strip_prefix("1.2.840.10008.1.2.4.") else {
        return false;
    };
    let main = rest.split('.').next().unwrap_or(rest);
    matches!(
        main,
        "50" | "51"
            | "52"
            | "53"
            | "54"
            | "55"
            | "56"
            | "59"
            | "60"
            | "61"
            | "62"
            | "63"
            | "64"
            | "81"
            | "91"
            | "93"
            | "100"
            | "101"
            | "102"
            | "103"
            | "104"
            | "105"
            | "106"
            | "107"
            | "108"
            | "110"
            | "111"
            | "203"
    )
}

/// At most three labels, then how many more.
pub(super) fn brief(l: &[UidRef]) -> String {
    const SHOWN: usize = 3;
    let head = l
        .iter()
        .take(SHOWN)
        .map(UidRef::label)
        .collect::<Vec<_>>()
        .join(", ");
    if l.len() > SHOWN {
        format!("{head} and {} more", l.len() - SHOWN)
    } else {
        head
    }
}

/// At most six names, then how many more.
fn few(l: &[&String]) -> String {
    const SHOWN: usize = 6;
    let head = l
        .iter()
        .take(SHOWN)
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if l.len() > SHOWN {
        format!("{head} and {} more", l.len() - SHOWN)
    } else {
        head
    }
}
