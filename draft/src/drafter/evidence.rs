//! Evidence: where in the document each drafted claim comes from, kept in the statement
//! under `[x.evidence]` so a reviewer can go from a claim to the sentence behind it.
//!
//! One entry per claim, keyed by the claim's path in the statement:
//! `"ae.STORESCP.capability.CTImageStorage.SCP"`, `"ae.STORESCP.max_pdu_receive"`,
//! `"device.name"`. The value says where (`at`: "page 12, line 34"; `section`) and what the
//! document says there (`text`, trimmed to one line of at most 160 characters).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::document::Loc;

/// Where one claim comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub at: Loc,
    /// The document's words there, on one line.
    pub text: String,
}

impl Evidence {
    pub fn new(at: &Loc, text: &str) -> Evidence {
        Evidence {
            at: at.clone(),
            text: one_line(text, 160),
        }
    }
}

/// Claims and their evidence, ordered by claim path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceMap(pub BTreeMap<String, Evidence>);

impl EvidenceMap {
    /// Records the evidence of `claim`, keeping the first when a claim is seen twice.
    pub fn add(&mut self, claim: String, ev: Evidence) {
        self.0.entry(claim).or_insert(ev);
    }

    /// The `[x.evidence]` table as TOML (placed under `[x]`).
    pub fn to_toml(&self) -> String {
        let mut o = String::from("[x.evidence]\n");
        for (claim, ev) in &self.0 {
            let _ = write!(
                o,
                "{} = {{ at = {}",
                toml_str(claim),
                toml_str(&ev.at.to_string())
            );
            if let Some(s) = &ev.at.section {
                let _ = write!(o, ", section = {}", toml_str(&one_line(s, 120)));
            }
            let _ = writeln!(o, ", text = {} }}", toml_str(&ev.text));
        }
        o
    }
}

/// `s` on one line (runs of white space folded), cut at `max` characters with "...".
pub fn one_line(s: &str, max: usize) -> String {
    let folded: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= max {
        folded
    } else {
        let cut: String = folded.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

/// A TOML basic string with every control character escaped.
pub fn toml_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_valid_toml_with_hostile_text() {
        let mut m = EvidenceMap::default();
        let at = Loc {
            page: Some(3),
            line: 12,
            section: Some("4.2 \"Store\"".into()),
            table: None,
        };
        m.add(
            "ae.A.capability.CTImageStorage.SCP".into(),
            Evidence::new(&at, "CT \\ \u{1b}[31m\n  Image   Storage"),
        );
        let text = format!("[x]\n{}", m.to_toml());
        let v: toml::Table = toml::from_str(&text).expect("valid TOML");
        let ev = &v["x"]["evidence"]["ae.A.capability.CTImageStorage.SCP"];
        assert_eq!(ev["at"].as_str(), Some("page 3, line 12"));
        assert_eq!(ev["text"].as_str(), Some("CT \\ \u{1b}[31m Image Storage"));
    }

    #[test]
    fn one_line_cuts_long_text() {
        assert_eq!(one_line("a  b\nc", 10), "a b c");
        assert_eq!(
            one_line(&"x".repeat(20), 10),
            format!("{}...", "x".repeat(7))
        );
    }
}
