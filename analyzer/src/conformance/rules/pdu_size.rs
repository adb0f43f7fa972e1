//! PDU sizes: the Max Length advertised against the claim, and P-DATA-TF PDUs larger
//! than the peer accepts or than the sender claims to send.

use dicomtap_wire::Event;
use dicomtap_wire::Severity::{Error, Warning};
use dicomtap_wire::assoc::UserInformation;

use super::{Rule, RuleId};
use crate::conformance::checker::{Conn, Ctx, Pending};
use crate::statement::Ae;

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 3] = [
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
];

/// The Max Length item of an A-ASSOCIATE against `max_pdu_receive`.
pub(crate) fn max_length_advertised(ae: &Ae, ui: &UserInformation, pending: &mut Pending) {
    if let Some(claim) = ae.max_pdu_receive
        && ui.max_length != Some(claim)
    {
        pending.push((
            RuleId::MaxPduAdvertisedDiffers,
            String::new(),
            format!("max_pdu_receive = {claim}"),
            ui.max_length.map_or_else(
                || "no Max Length item sent".to_string(),
                |v| format!("advertised Max Length {v}"),
            ),
        ));
    }
}

/// A PDU of `len` bytes is over `max` (absent or 0 = unlimited).
fn over(len: u32, max: Option<u32>) -> Option<u32> {
    max.filter(|&m| m != 0 && len > m)
}

impl Ctx<'_> {
    /// A P-DATA-TF of `len` bytes against the peer's Max Length and the sender's claim.
    pub(crate) fn pdata_size(&mut self, c: &mut Conn, e: &Event, len: u32) {
        let Some((_, ae)) = self.party_ae(c, e.from) else {
            return;
        };
        let own = ae.max_pdu_send;
        let ev = self.evidence(c, e);
        if let Some(max) = over(len, c.max_length[e.from.peer().index()]) {
            self.report(
                c,
                e.from,
                RuleId::PduExceedsPeerMax,
                "",
                "P-DATA-TF no larger than the peer's Max Length".into(),
                format!(
                    "sent a P-DATA-TF of {len} bytes; the {} advertised Max Length {max}",
                    e.from.peer()
                ),
                ev.clone(),
            );
        }
        if let Some(max) = over(len, own) {
            self.report(
                c,
                e.from,
                RuleId::PduExceedsClaimedMaxSend,
                "",
                format!("max_pdu_send = {max}"),
                format!("sent a P-DATA-TF of {len} bytes"),
                ev,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_or_absent_max_is_unlimited() {
        assert_eq!(over(20_000, Some(16_384)), Some(16_384));
        assert_eq!(over(16_384, Some(16_384)), None);
        assert_eq!(over(u32::MAX, Some(0)), None);
        assert_eq!(over(u32::MAX, None), None);
    }

    #[test]
    fn advertised_max_length_against_the_claim() {
        let ae = Ae {
            max_pdu_receive: Some(16_384),
            ..Ae::default()
        };
        let mut pending = Vec::new();
        let mut ui = UserInformation {
            max_length: Some(16_384),
            ..UserInformation::default()
        };
        max_length_advertised(&ae, &ui, &mut pending);
        assert!(pending.is_empty());
        ui.max_length = None;
        max_length_advertised(&ae, &ui, &mut pending);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RuleId::MaxPduAdvertisedDiffers);
        assert_eq!(pending[0].3, "no Max Length item sent");
    }
}
