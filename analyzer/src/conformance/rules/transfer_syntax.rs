//! Transfer syntaxes: proposed and chosen against the claim, unregistered ones without a
//! `private_uids` entry, the acceptor's preference, and data sets encoded otherwise than
//! negotiated.

use dicomtap_wire::Severity::{Error, Warning};
use dicomtap_wire::assoc::{ContextResult, ProposedContext};
use dicomtap_wire::event::DatasetPeekEvent;

use super::{Rule, RuleId};
use crate::conformance::checker::{Pending, label, labels};
use crate::statement::{Capability, Statement};

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 4] = [
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
];

/// A transfer syntax of the standard (in the wire's syntax table or the UID registry).
fn is_registered_ts(uid: &str) -> bool {
    dicomtap_wire::syntax::lookup(uid).is_some() || dicomtap_wire::uid::is_transfer_syntax(uid)
}

/// The capability's transfer syntaxes as findings quote the claim.
fn claimed_transfer_syntaxes(s: Option<&Statement>, cap: &Capability, sop: &str) -> String {
    let claimed: Vec<&str> = cap
        .transfer_syntaxes
        .iter()
        .map(|t| t.uid.as_str())
        .collect();
    format!(
        "transfer_syntaxes = {} for {} {}",
        labels(s, &claimed),
        label(s, sop),
        cap.role
    )
}

/// An unregistered transfer syntax the statement does not document (`did`: proposed or
/// accepted).
fn undocumented(
    s: Option<&Statement>,
    ts: &str,
    sop: &str,
    did: &str,
    pc_id: u8,
    pending: &mut Pending,
) {
    if !is_registered_ts(ts) && !s.is_some_and(|s| s.is_private_uid(ts)) {
        pending.push((
            RuleId::PrivateTransferSyntaxUndocumented,
            ts.to_string(),
            "private_uids: no entry for this UID".into(),
            format!(
                "{did} unregistered transfer syntax {ts} for {} (context {pc_id})",
                label(s, sop)
            ),
        ));
    }
}

/// The transfer syntaxes the requestor proposed for a context, against its capability.
pub(crate) fn context_proposed(
    s: Option<&Statement>,
    pc: &ProposedContext,
    cap: Option<&Capability>,
    pending: &mut Pending,
) {
    let sop = pc.abstract_syntax.as_str();
    for ts in &pc.transfer_syntaxes {
        undocumented(s, ts, sop, "proposed", pc.id, pending);
    }
    if let Some(cap) = cap {
        let unclaimed: Vec<&str> = pc
            .transfer_syntaxes
            .iter()
            .filter(|t| !cap.has_transfer_syntax(t))
            .map(String::as_str)
            .collect();
        if !unclaimed.is_empty() {
            pending.push((
                RuleId::TransferSyntaxNotClaimed,
                format!("{sop} {}", unclaimed.join(",")),
                claimed_transfer_syntaxes(s, cap, sop),
                format!(
                    "proposed {} for {} (context {})",
                    labels(s, &unclaimed),
                    label(s, sop),
                    pc.id
                ),
            ));
        }
    }
}

/// The transfer syntax the acceptor chose for an accepted context, against its
/// capability and preference.
pub(crate) fn context_accepted(
    s: Option<&Statement>,
    pc: &ProposedContext,
    r: &ContextResult,
    cap: Option<&Capability>,
    pending: &mut Pending,
) {
    let sop = pc.abstract_syntax.as_str();
    let Some(ts) = r.transfer_syntax.as_deref() else {
        return;
    };
    undocumented(s, ts, sop, "accepted", pc.id, pending);
    let Some(cap) = cap else { return };
    if !cap.has_transfer_syntax(ts) {
        pending.push((
            RuleId::TransferSyntaxNotClaimed,
            format!("{sop} {ts}"),
            claimed_transfer_syntaxes(s, cap, sop),
            format!(
                "chose {} for {} (context {})",
                label(s, ts),
                label(s, sop),
                pc.id
            ),
        ));
    }
    if let Some(best) = cap
        .preferred_transfer_syntaxes
        .iter()
        .find(|p| pc.transfer_syntaxes.contains(&p.uid))
        && best.uid != ts
    {
        let preferred: Vec<&str> = cap
            .preferred_transfer_syntaxes
            .iter()
            .map(|t| t.uid.as_str())
            .collect();
        let proposed: Vec<&str> = pc.transfer_syntaxes.iter().map(String::as_str).collect();
        pending.push((
            RuleId::AcceptorPreferenceIgnored,
            format!("{sop} {ts}"),
            format!(
                "preferred_transfer_syntaxes = {} for {}",
                labels(s, &preferred),
                label(s, sop)
            ),
            format!(
                "chose {} for {} although {} was proposed (proposed {}, context {})",
                label(s, ts),
                label(s, sop),
                label(s, &best.uid),
                labels(s, &proposed),
                pc.id
            ),
        ));
    }
}

/// A data set encoded otherwise than its context's transfer syntax says.
pub(crate) fn dataset_encoding(
    s: Option<&Statement>,
    pe: &DatasetPeekEvent,
    pending: &mut Pending,
) {
    if let Some(found) = pe.peek.encoding_found {
        let ts = pe.transfer_syntax.as_deref().unwrap_or("?");
        pending.push((
            RuleId::DatasetEncodingDiffers,
            format!("{ts} {found:?}"),
            format!(
                "data encoded in the negotiated transfer syntax {}",
                label(s, ts)
            ),
            format!("data set on context {} encoded as {found:?}", pe.pc_id),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(ts: &[&str]) -> ProposedContext {
        ProposedContext {
            id: 3,
            abstract_syntax: "1.2.840.10008.5.1.4.1.1.7".into(),
            transfer_syntaxes: ts.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn registered_transfer_syntaxes_are_known() {
        assert!(is_registered_ts("1.2.840.10008.1.2"));
        assert!(is_registered_ts("1.2.840.10008.1.2.4.50"));
        assert!(!is_registered_ts("1.2.3.4.5"));
        // A SOP class is not a transfer syntax.
        assert!(!is_registered_ts("1.2.840.10008.5.1.4.1.1.7"));
    }

    #[test]
    fn unregistered_transfer_syntax_without_statement_entry() {
        let mut pending = Vec::new();
        context_proposed(
            None,
            &pc(&["1.2.840.10008.1.2", "1.2.3.4.5"]),
            None,
            &mut pending,
        );
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RuleId::PrivateTransferSyntaxUndocumented);
        assert_eq!(pending[0].1, "1.2.3.4.5");
        assert!(
            pending[0]
                .3
                .starts_with("proposed unregistered transfer syntax 1.2.3.4.5")
        );
        let r = ContextResult {
            id: 3,
            result: 0,
            result_name: "acceptance",
            transfer_syntax: Some("1.2.3.4.5".into()),
        };
        context_accepted(None, &pc(&["1.2.3.4.5"]), &r, None, &mut pending);
        assert_eq!(pending.len(), 2);
        assert!(
            pending[1]
                .3
                .starts_with("accepted unregistered transfer syntax")
        );
    }
}
