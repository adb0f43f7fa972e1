//! Associations and security: addresses and ports, TLS, the initiator and acceptor roles,
//! simultaneous associations, calling AE titles accepted or rejected, and user identity.

use std::collections::HashMap;

use dicomtap_wire::Severity::{Error, Warning};
use dicomtap_wire::assoc::{AssociateAccept, AssociateReject, AssociateRequest};
use dicomtap_wire::{Event, Side};

use super::{Rule, RuleId};
use crate::conformance::Evidence;
use crate::conformance::checker::{Conn, Ctx, Party, Pending};
use crate::statement::{Ae, UserIdentityType, ae_title_eq};

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 8] = [
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AssocRole {
    Initiator,
    Acceptor,
}

impl AssocRole {
    /// The role of the AE on `side` of an association.
    fn of(side: Side) -> AssocRole {
        match side {
            Side::Requestor => AssocRole::Initiator,
            Side::Acceptor => AssocRole::Acceptor,
        }
    }

    /// The `max_associations` key of the role.
    fn key(self) -> &'static str {
        match self {
            AssocRole::Initiator => "initiator",
            AssocRole::Acceptor => "acceptor",
        }
    }
}

/// Open (accepted, not yet ended) associations per party and role.
pub(crate) type OpenCounts = HashMap<(Party, AssocRole), u32>;

/// The statement's `user_identity` claim as findings quote it.
fn user_identity_claim(ae: &Ae) -> String {
    let types: Vec<&str> = ae.user_identity.iter().map(|t| t.as_str()).collect();
    format!("user_identity = [{}]", types.join(", "))
}

/// The user identity type a requestor sent against its claim.
pub(crate) fn user_identity_proposed(ae: &Ae, rq: &AssociateRequest, pending: &mut Pending) {
    if let Some(ui) = &rq.user_info.user_identity {
        let t = UserIdentityType::from_code(ui.identity_type);
        if !t.is_some_and(|t| ae.user_identity.contains(&t)) {
            pending.push((
                RuleId::UserIdentityDiffers,
                ui.identity_type.to_string(),
                user_identity_claim(ae),
                format!(
                    "sent user identity of type {} ({})",
                    ui.identity_type, ui.identity_type_name
                ),
            ));
        }
    }
}

/// The acceptor accepted a calling AE title its allow-list does not contain.
pub(crate) fn calling_ae_accepted(ae: &Ae, rq: &AssociateRequest, pending: &mut Pending) {
    if !ae.accepts_calling(&rq.calling_ae) {
        pending.push((
            RuleId::CallingAeNotAllowedAccepted,
            rq.calling_ae.clone(),
            format!(
                "accept_calling_ae_titles = {:?}",
                ae.accept_calling_ae_titles.clone().unwrap_or_default()
            ),
            format!("accepted an association from calling AE {}", rq.calling_ae),
        ));
    }
}

/// The acceptor's user identity response against its claim.
pub(crate) fn user_identity_answered(
    ae: &Ae,
    rq: &AssociateRequest,
    ac: &AssociateAccept,
    pending: &mut Pending,
) {
    if ac.user_info.user_identity_response_length.is_some() && ae.user_identity.is_empty() {
        pending.push((
            RuleId::UserIdentityDiffers,
            "response".into(),
            "user_identity: none".into(),
            "sent a user identity server response".into(),
        ));
    }
    // A positive response requested for a type it claims, the association accepted,
    // and no response: the identity was not confirmed (PS3.7 D.3.3.7).
    if let Some(ui) = &rq.user_info.user_identity
        && ui.positive_response_requested
        && ac.user_info.user_identity_response_length.is_none()
        && UserIdentityType::from_code(ui.identity_type)
            .is_some_and(|t| ae.user_identity.contains(&t))
    {
        pending.push((
            RuleId::UserIdentityDiffers,
            "no-response".into(),
            user_identity_claim(ae),
            format!(
                "accepted user identity of type {} ({}) with a positive response requested, without a response",
                ui.identity_type, ui.identity_type_name
            ),
        ));
    }
}

impl Ctx<'_> {
    /// The requestor's address and the acceptor's address and port against the AEs'
    /// `hosts` and `port` (`req`, `acc`: the matched parties, and whether the host
    /// matched).
    pub(crate) fn addresses(
        &mut self,
        c: &mut Conn,
        rq: &AssociateRequest,
        req: Option<(Party, bool)>,
        acc: Option<(Party, bool)>,
        ev: &Evidence,
    ) {
        if let Some((p, host_ok)) = req
            && !host_ok
            && let Some(ae) = self.ae(p)
        {
            let claim = format!("hosts = {:?}", ae.hosts);
            let observed = format!(
                "AE title {} used by a requestor at {}",
                rq.calling_ae,
                c.client.map_or_else(|| "?".into(), |a| a.ip().to_string())
            );
            self.report(
                c,
                Side::Requestor,
                RuleId::AeAddressNotClaimed,
                "host",
                claim,
                observed,
                ev.clone(),
            );
        }
        if let Some((p, host_ok)) = acc
            && let Some(ae) = self.ae(p)
        {
            if !host_ok {
                let claim = format!("hosts = {:?}", ae.hosts);
                let observed = format!(
                    "AE title {} called at {}",
                    rq.called_ae,
                    c.server.map_or_else(|| "?".into(), |a| a.ip().to_string())
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AeAddressNotClaimed,
                    "host",
                    claim,
                    observed,
                    ev.clone(),
                );
            }
            if let (Some(port), Some(server)) = (ae.port, c.server)
                && server.port() != port
            {
                let claim = format!("port = {port}");
                let observed = format!(
                    "AE title {} called on port {}; if that is where this installation \
                     listens, set port = {} for AE {} in its statement",
                    rq.called_ae,
                    server.port(),
                    server.port(),
                    ae.title
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AeAddressNotClaimed,
                    "port",
                    claim,
                    observed,
                    ev.clone(),
                );
            }
        }
    }

    /// Plain DICOM to or from an AE that requires TLS, and an AE in a role its
    /// statement says it does not take.
    pub(crate) fn security_and_roles(
        &mut self,
        c: &mut Conn,
        rq: &AssociateRequest,
        ev: &Evidence,
    ) {
        for side in [Side::Requestor, Side::Acceptor] {
            let Some((_, ae)) = self.party_ae(c, side) else {
                continue;
            };
            let tls_required = ae.tls_required();
            let (role_ok, role_claim) = match side {
                Side::Requestor => (ae.initiator || !ae.acceptor, "initiator = false"),
                Side::Acceptor => (ae.acceptor || !ae.initiator, "acceptor = false"),
            };
            if tls_required {
                let observed = format!(
                    "plain DICOM A-ASSOCIATE-RQ {} -> {} (not TLS)",
                    rq.calling_ae, rq.called_ae
                );
                self.report(
                    c,
                    side,
                    RuleId::TlsClaimedPlaintextSeen,
                    "",
                    "tls.required = true".into(),
                    observed,
                    ev.clone(),
                );
            }
            if !role_ok {
                let observed = match side {
                    Side::Requestor => format!("initiated an association to {}", rq.called_ae),
                    Side::Acceptor => {
                        format!("was called by {} as association acceptor", rq.calling_ae)
                    }
                };
                self.report(
                    c,
                    side,
                    RuleId::AssociationRoleNotClaimed,
                    "",
                    role_claim.into(),
                    observed,
                    ev.clone(),
                );
            }
        }
    }

    /// An association was accepted: count it for both parties (once) and compare with
    /// `max_associations`.
    pub(crate) fn count_association(&mut self, c: &mut Conn, e: &Event) {
        if c.counted {
            return;
        }
        c.counted = true;
        for side in [Side::Requestor, Side::Acceptor] {
            let role = AssocRole::of(side);
            let Some(p) = c.parties[side.index()] else {
                continue;
            };
            let n = {
                let n = self.g.open.entry((p, role)).or_insert(0);
                *n += 1;
                *n
            };
            let claim = self.ae(p).and_then(|ae| match role {
                AssocRole::Initiator => ae.max_associations.initiator,
                AssocRole::Acceptor => ae.max_associations.acceptor,
            });
            if let Some(max) = claim
                && n > max
            {
                let k = role.key();
                let what = match role {
                    AssocRole::Initiator => "initiated",
                    AssocRole::Acceptor => "accepted",
                };
                let ev = self.evidence(c, e);
                self.report(
                    c,
                    side,
                    RuleId::MaxAssociationsExceeded,
                    k,
                    format!("max_associations.{k} = {max}"),
                    format!("{n} simultaneous associations {what}"),
                    ev,
                );
            }
        }
    }

    /// The association is over: release its counts.
    pub(crate) fn uncount_association(&mut self, c: &mut Conn) {
        if !c.counted {
            return;
        }
        c.counted = false;
        for side in [Side::Requestor, Side::Acceptor] {
            if let Some(p) = c.parties[side.index()]
                && let Some(n) = self.g.open.get_mut(&(p, AssocRole::of(side)))
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.g.open.remove(&(p, AssocRole::of(side)));
                }
            }
        }
    }

    /// The acceptor rejected the association: for an allowed calling AE, or for its
    /// association limit below the claim.
    pub(crate) fn association_rejected(&mut self, c: &mut Conn, e: &Event, rj: &AssociateReject) {
        let Some((p, ae)) = self.party_ae(c, Side::Acceptor) else {
            return;
        };
        let ev = self.evidence(c, e);
        let calling = c.titles[0].clone();
        let called = c.titles[1].clone();
        match (rj.source, rj.reason) {
            (1, 3) if ae.accepts_calling(&calling) => {
                let claim = ae.accept_calling_ae_titles.as_ref().map_or_else(
                    || "accept_calling_ae_titles: any".to_string(),
                    |l| format!("accept_calling_ae_titles = {l:?}"),
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AssociationRejectedForAllowedAe,
                    "3",
                    claim,
                    format!("rejected calling AE {calling}: {}", rj.description),
                    ev,
                );
            }
            // Some acceptors (DCMTK dcmqrscp) answer a calling AE missing from their
            // access list with reason 7: a rejection of a title the statement does not
            // allow conforms whatever the reason code.
            (1, 7) if ae_title_eq(&ae.title, &called) && ae.accepts_calling(&calling) => {
                let claim = ae.accept_calling_ae_titles.as_ref().map_or_else(
                    || format!("title = {:?}, accept_calling_ae_titles: any", ae.title),
                    |l| format!("title = {:?}, accept_calling_ae_titles = {l:?}", ae.title),
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AssociationRejectedForAllowedAe,
                    "7",
                    claim,
                    format!(
                        "rejected called AE {called} (calling AE {calling}): {}",
                        rj.description
                    ),
                    ev,
                );
            }
            (3, 2) => {
                let open = self
                    .g
                    .open
                    .get(&(p, AssocRole::Acceptor))
                    .copied()
                    .unwrap_or(0);
                if let Some(max) = ae.max_associations.acceptor
                    && open < max
                {
                    self.report(
                        c,
                        Side::Acceptor,
                        RuleId::LocalLimitBelowClaim,
                        "",
                        format!("max_associations.acceptor = {max}"),
                        format!("rejected with local-limit-exceeded while {open} association(s) were open to it in the traffic seen"),
                        ev,
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_wire::assoc::{UserIdentityRequest, UserInformation};

    fn rq_with_identity(t: u8) -> AssociateRequest {
        AssociateRequest {
            protocol_version: 1,
            called_ae: "PACS".into(),
            calling_ae: "MOD".into(),
            application_context: None,
            contexts: Vec::new(),
            user_info: UserInformation {
                user_identity: Some(UserIdentityRequest {
                    identity_type: t,
                    identity_type_name: dicomtap_wire::assoc::user_identity_type_name(t),
                    positive_response_requested: true,
                    username: None,
                    primary_field_length: 4,
                    secondary_field_length: 0,
                }),
                ..UserInformation::default()
            },
            unknown: Vec::new(),
        }
    }

    #[test]
    fn user_identity_against_the_claim() {
        let ae = Ae {
            user_identity: vec![UserIdentityType::Username],
            ..Ae::default()
        };
        let mut pending = Vec::new();
        user_identity_proposed(&ae, &rq_with_identity(1), &mut pending);
        assert!(pending.is_empty());
        user_identity_proposed(&ae, &rq_with_identity(5), &mut pending);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RuleId::UserIdentityDiffers);
        assert_eq!(pending[0].1, "5");
        assert_eq!(pending[0].2, "user_identity = [username]");
    }

    #[test]
    fn calling_ae_titles_outside_the_allow_list() {
        let ae = Ae {
            accept_calling_ae_titles: Some(vec!["CT1".into()]),
            ..Ae::default()
        };
        let mut pending = Vec::new();
        calling_ae_accepted(&ae, &rq_with_identity(1), &mut pending);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RuleId::CallingAeNotAllowedAccepted);
        assert_eq!(pending[0].1, "MOD");
        calling_ae_accepted(&Ae::default(), &rq_with_identity(1), &mut pending);
        assert_eq!(pending.len(), 1, "absent = any title");
    }

    #[test]
    fn roles_name_their_max_associations_key() {
        assert_eq!(AssocRole::of(Side::Requestor).key(), "initiator");
        assert_eq!(AssocRole::of(Side::Acceptor).key(), "acceptor");
    }
}
