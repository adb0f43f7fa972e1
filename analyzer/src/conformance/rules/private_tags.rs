//! Private tags: private creators in data sets that the sender's statement does not list
//! (data sets it only relays are not its own).

use dicomtap_wire::Severity::Warning;
use dicomtap_wire::Side;
use dicomtap_wire::peek::{DatasetPeek, PrivateCreator};

use super::{Rule, RuleId};
use crate::conformance::checker::{Conn, Ctx, Party, Pending};
use crate::statement::Ae;

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 1] = [Rule {
    id: RuleId::PrivateCreatorUndocumented,
    severity: Warning,
    claim: "ae.private_creators",
    summary: "A data set the device sent contains a private creator element its statement does not document.",
    why: "Private attributes carry vendor data (dose, reconstruction, annotations); undocumented ones may be dropped, coerced or misinterpreted by archives and de-identification profiles.",
    detection: "Private creator elements (gggg,0010-00FF) found by the dataset peek in data sets sent by the AE are compared with private_creators; a data set whose SOP instance the AE itself received earlier in the traffic (C-STORE Success) is relayed, not written by it (an archive's C-MOVE/C-GET sub-operations), and is not checked.",
    remedy: "Ask the vendor for the private dictionary and add the creator to the statement, or check why the device writes it.",
}];

/// A private creator as findings show it: `"CREATOR" (gggg,bbxx)`.
fn shown(pc: &PrivateCreator) -> String {
    format!(
        "{:?} ({:04X},{:02X}xx)",
        pc.creator.trim(),
        pc.group,
        pc.block
    )
}

impl Ctx<'_> {
    /// One finding per data set, listing the creators not reported before. A data set
    /// this AE itself received earlier (it answered its C-STORE with Success) is relayed,
    /// e.g. by an archive's C-MOVE/C-GET sub-operations: its creators are the sender's.
    pub(crate) fn private_creators(
        &mut self,
        c: &mut Conn,
        from: Side,
        p: Party,
        ae: &Ae,
        peek: &DatasetPeek,
        pending: &mut Pending,
    ) {
        let relayed = peek
            .sop_instance_uid
            .as_ref()
            .is_some_and(|i| self.g.commit.received(p, i));
        let undocumented: Vec<String> = peek
            .private_creators
            .iter()
            .filter(|_| !relayed)
            .filter(|pc| {
                !ae.private_creators
                    .iter()
                    .any(|x| x.trim() == pc.creator.trim())
            })
            .filter(|pc| {
                !c.reported.contains(&(
                    RuleId::PrivateCreatorUndocumented,
                    from,
                    pc.creator.trim().to_string(),
                ))
            })
            .map(shown)
            .collect();
        if undocumented.is_empty() {
            return;
        }
        for pc in &peek.private_creators {
            if c.reported.len() < self.cfg.max_keys_per_association {
                c.reported.insert((
                    RuleId::PrivateCreatorUndocumented,
                    from,
                    pc.creator.trim().to_string(),
                ));
            }
        }
        pending.push((
            RuleId::PrivateCreatorUndocumented,
            undocumented.join(","),
            format!("private_creators = {:?}", ae.private_creators),
            format!(
                "data set has private creator(s) {}",
                undocumented.join(", ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creators_are_shown_trimmed_with_their_block() {
        let pc = PrivateCreator {
            group: 0x0029,
            block: 0x10,
            creator: "SIEMENS CSA HEADER ".into(),
            in_sequence: false,
        };
        assert_eq!(shown(&pc), "\"SIEMENS CSA HEADER\" (0029,10xx)");
    }
}
