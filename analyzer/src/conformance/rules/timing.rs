//! Timing: a side that gave up (abort, close or reset) after waiting clearly shorter or
//! longer than the timeout its statement claims for what it was waiting for.

use std::fmt;

use dicomtap_wire::Severity::{Info, Warning};
use dicomtap_wire::{Event, Side, StreamEnd};

use super::{Rule, RuleId};
use crate::conformance::checker::{Conn, Ctx, Lifecycle, secs};

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 2] = [
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
];

/// How a side gave up on an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GaveUp {
    Abort,
    Stream(StreamEnd),
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GaveUp::Abort => "A-ABORT",
            GaveUp::Stream(StreamEnd::Close) => "TCP close without release",
            GaveUp::Stream(StreamEnd::Reset) => "TCP reset",
        })
    }
}

/// A wait of `gap` seconds against a claimed timeout: shorter or longer than the claim
/// by more than 10% (and at least one second), or neither.
fn judge(gap: f64, claim: f64) -> Option<RuleId> {
    let tol = (claim * 0.1).max(1.0);
    if gap < claim - tol {
        Some(RuleId::TimeoutShorterThanClaimed)
    } else if gap > claim + tol {
        Some(RuleId::TimeoutLongerThanClaimed)
    } else {
        None
    }
}

impl Ctx<'_> {
    /// `e.from` aborted or closed: how long had it been waiting, against which timeout?
    pub(crate) fn gave_up(&mut self, c: &mut Conn, e: &Event, how: GaveUp) {
        if c.lifecycle == Lifecycle::Ended {
            return;
        }
        let side = e.from;
        let Some((_, ae)) = self.party_ae(c, side) else {
            return;
        };
        let Some(last) = c.last_pdu_ts else { return };
        let gap = secs(e.ts_us.saturating_sub(last));
        if gap < self.cfg.min_timeout_gap_s {
            return;
        }
        let own_outstanding = c.outstanding.keys().any(|(s, _)| *s == side);
        let peer_outstanding = c.outstanding.keys().any(|(s, _)| *s == side.peer());
        let mut unanswered = String::new();
        let established = matches!(
            c.lifecycle,
            Lifecycle::Established { .. } | Lifecycle::Released
        );
        let (name, claim, waiting) = if !established {
            if side != Side::Requestor {
                return;
            }
            ("artim", ae.timeouts_s.artim, "for the A-ASSOCIATE answer")
        } else if c.lifecycle
            == (Lifecycle::Established {
                release_by: Some(side),
            })
        {
            ("artim", ae.timeouts_s.artim, "for the A-RELEASE-RP")
        } else if own_outstanding {
            let oldest = c
                .outstanding
                .iter()
                .filter(|((s, _), _)| *s == side)
                .map(|(_, o)| o.ts_us)
                .min()
                .unwrap_or(last);
            unanswered = format!(
                " (its oldest unanswered request was sent {:.1} s before)",
                secs(e.ts_us.saturating_sub(oldest))
            );
            ("dimse", ae.timeouts_s.dimse, "for a DIMSE response")
        } else if peer_outstanding {
            // It owed the answer itself: not a timeout of its own.
            return;
        } else {
            ("idle", ae.timeouts_s.idle, "on an idle association")
        };
        let Some(claim) = claim else { return };
        let Some(rule) = judge(gap, claim) else {
            return;
        };
        let ev = self.evidence(c, e);
        self.report(
            c,
            side,
            rule,
            name,
            format!("timeouts_s.{name} = {claim}"),
            format!("gave up ({how}) after waiting {gap:.1} s {waiting}{unanswered}"),
            ev,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_within_the_tolerance_are_not_reported() {
        // 10% of the claim, at least one second.
        assert_eq!(judge(30.0, 30.0), None);
        assert_eq!(judge(27.0, 30.0), None);
        assert_eq!(judge(26.9, 30.0), Some(RuleId::TimeoutShorterThanClaimed));
        assert_eq!(judge(33.1, 30.0), Some(RuleId::TimeoutLongerThanClaimed));
        assert_eq!(judge(4.0, 5.0), None);
        assert_eq!(judge(3.9, 5.0), Some(RuleId::TimeoutShorterThanClaimed));
    }

    #[test]
    fn how_a_side_gave_up_reads_as_before() {
        assert_eq!(GaveUp::Abort.to_string(), "A-ABORT");
        assert_eq!(
            GaveUp::Stream(StreamEnd::Close).to_string(),
            "TCP close without release"
        );
        assert_eq!(GaveUp::Stream(StreamEnd::Reset).to_string(), "TCP reset");
    }
}
