//! Data and character sets: Specific Character Sets declared but not claimed, text not
//! valid in the declared set, and DIMSE statuses the statement does not list.

use dicomtap_wire::Event;
use dicomtap_wire::Severity::{Error, Warning};
use dicomtap_wire::event::CommandEvent;
use dicomtap_wire::peek::DatasetPeek;
use dicomtap_wire::status::Status;

use super::{Rule, RuleId};
use crate::conformance::checker::{Conn, Ctx, Outstanding, Pending, label};
use crate::statement::Ae;

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 3] = [
    Rule {
        id: RuleId::CharacterSetNotClaimed,
        severity: Warning,
        claim: "ae.character_sets",
        summary: "A data set the device sent declares a Specific Character Set (0008,0005) its statement does not list.",
        why: "Receivers display or store names and text through the declared set; one the integration did not plan for turns patient names into mojibake in the PACS, RIS or reports.",
        detection: "Every value of (0008,0005) in the data sets the AE sent is compared with character_sets (absent or empty means ISO_IR 6 only; no (0008,0005) always conforms).",
        remedy: "Configure the device's character set to the claimed one, or check that every peer supports the one it uses and update the statement.",
    },
    Rule {
        id: RuleId::TextInvalidInCharacterSet,
        severity: Error,
        claim: "ae.character_sets",
        summary: "Text values in a data set the device sent are not valid in the character set the data set declares.",
        why: "This is how patient names get mangled: bytes written in one character set and declared as another are decoded wrongly by every receiver, and the wrong name is then stored and matched on.",
        detection: "The dataset peek checks every text value's bytes against the repertoire declared by (0008,0005) (for example Latin-1 bytes under ISO_IR 192 or UTF-8 under ISO_IR 100). The values themselves are never reported.",
        remedy: "Fix the device's character set configuration so that the declared set matches the bytes it writes; this usually needs the vendor.",
    },
    Rule {
        id: RuleId::StatusNotClaimed,
        severity: Warning,
        claim: "ae.statuses / ae.capability.statuses",
        summary: "The device returned a DIMSE status its statement does not list.",
        why: "Senders decide what to retry, what to report and what to delete from the status; an undocumented status is handled as an unknown failure (or worse, as success) by the peer.",
        detection: "The status of every response the AE sent is compared with the statuses of its capability for the SOP class, or the AE-level list (absent = not checked).",
        remedy: "Ask the vendor what the status means in this context and add it to the statement, or find out what the device disliked (the error comment is in the evidence).",
    },
];

/// ISO_IR 6 (and ISO 2022 IR 6, with code extensions) is the default repertoire, which
/// every AE supports whatever it claims.
fn is_default_repertoire(term: &str) -> bool {
    term == "ISO_IR 6" || term == "ISO 2022 IR 6"
}

/// The Specific Character Set a data set declares against `character_sets`, and text
/// not valid in it.
pub(crate) fn character_sets(ae: &Ae, peek: &DatasetPeek, pending: &mut Pending) {
    let claimed = ae.effective_character_sets();
    let declared: Vec<&str> = peek
        .specific_character_set
        .iter()
        .map(|t| t.trim())
        .collect();
    for term in declared.iter().filter(|t| !t.is_empty()) {
        if !is_default_repertoire(term) && !claimed.iter().any(|c| c.trim() == *term) {
            pending.push((
                RuleId::CharacterSetNotClaimed,
                term.to_string(),
                format!("character_sets = {claimed:?}"),
                format!(
                    "data set declares Specific Character Set {:?}",
                    peek.specific_character_set.join("\\")
                ),
            ));
        }
    }
    if let Some(first) = peek.invalid_text.first() {
        let declared_text = if declared.iter().all(|t| t.is_empty()) {
            "the default repertoire (no (0008,0005))".to_string()
        } else {
            format!("{:?}", peek.specific_character_set.join("\\"))
        };
        pending.push((
            RuleId::TextInvalidInCharacterSet,
            peek.specific_character_set.join("\\"),
            format!("character_sets = {claimed:?}; text valid in the declared set"),
            format!(
                "{} text value(s) not valid in {declared_text}, first {} {} at byte {}: {}",
                peek.invalid_text.len(),
                first.tag,
                first.vr,
                first.byte_offset,
                first.reason
            ),
        ));
    }
}

impl Ctx<'_> {
    /// The status of a response against the statuses the sender claims for its SOP class.
    pub(crate) fn status_returned(
        &mut self,
        c: &mut Conn,
        e: &Event,
        ce: &CommandEvent,
        status: &Status,
        request: Option<&Outstanding>,
    ) {
        let cmd = &ce.command;
        let sop_class = cmd
            .sop_class()
            .map(str::to_string)
            .or_else(|| request.and_then(|r| r.sop_class.clone()))
            .or_else(|| ce.abstract_syntax.clone());
        let Some((p, ae)) = self.party_ae(c, e.from) else {
            return;
        };
        let Some(sop) = sop_class.as_deref() else {
            return;
        };
        if ae.allows_status(status.value, sop) != Some(false) {
            return;
        }
        let list = ae.statuses_for(sop).unwrap_or_default();
        let s = self.stmt(p);
        let claim = format!(
            "statuses for {} = [{}]",
            label(s, sop),
            list.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut observed = format!("returned {} to {}", status, cmd.command);
        if let Some(ec) = &cmd.error_comment {
            observed.push_str(&format!(" (error comment {ec:?})"));
        }
        let mut ev = self.evidence(c, e);
        ev.message_id = cmd.responded_to;
        ev.sop_instance = cmd
            .sop_instance()
            .map(str::to_string)
            .or_else(|| request.and_then(|r| r.sop_instance.clone()));
        self.report(
            c,
            e.from,
            RuleId::StatusNotClaimed,
            &format!("{} {sop}", status.code),
            claim,
            observed,
            ev,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_character_sets_against_the_claim() {
        let ae = Ae {
            character_sets: vec!["ISO_IR 100".into()],
            ..Ae::default()
        };
        let peek = |sets: &[&str]| DatasetPeek {
            specific_character_set: sets.iter().map(|s| s.to_string()).collect(),
            ..DatasetPeek::default()
        };
        let mut pending = Vec::new();
        character_sets(&ae, &peek(&["ISO_IR 100 "]), &mut pending);
        character_sets(&ae, &peek(&["", "ISO 2022 IR 6"]), &mut pending);
        assert!(pending.is_empty(), "{pending:?}");
        character_sets(&ae, &peek(&["ISO_IR 192"]), &mut pending);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RuleId::CharacterSetNotClaimed);
        assert_eq!(pending[0].1, "ISO_IR 192");
    }
}
