//! Conformance findings grouped per device and rule: what the text report prints and the
//! JUnit XML is written from. Bounded: each group keeps its count, its worst severity and
//! only its first few findings as examples.

use std::collections::{BTreeMap, BTreeSet};

use dicomtap_wire::Severity;

use super::{ConformanceFinding, RuleId};

/// Findings kept per group as examples.
pub const DEFAULT_EXAMPLES: usize = 20;

/// The findings of one rule for one device.
#[derive(Debug, Clone)]
pub struct Group {
    pub severity: Severity,
    pub count: u64,
    /// The first findings, at most the report's example limit.
    pub examples: Vec<ConformanceFinding>,
}

/// Findings grouped by device, then rule.
#[derive(Debug, Clone)]
pub struct FindingReport {
    groups: BTreeMap<(String, RuleId), Group>,
    max_examples: usize,
    total: u64,
}

impl Default for FindingReport {
    fn default() -> Self {
        FindingReport::new(DEFAULT_EXAMPLES)
    }
}

impl FindingReport {
    pub fn new(max_examples: usize) -> Self {
        FindingReport {
            groups: BTreeMap::new(),
            max_examples,
            total: 0,
        }
    }

    pub fn add(&mut self, f: &ConformanceFinding) {
        self.total += 1;
        let g = self
            .groups
            .entry((f.device.clone(), f.rule))
            .or_insert_with(|| Group {
                severity: f.severity,
                count: 0,
                examples: Vec::new(),
            });
        g.count += 1;
        g.severity = g.severity.max(f.severity);
        if g.examples.len() < self.max_examples {
            g.examples.push(f.clone());
        }
    }

    /// All findings added.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The worst severity of any finding.
    pub fn worst(&self) -> Option<Severity> {
        self.groups.values().map(|g| g.severity).max()
    }

    /// The group of a device and rule.
    pub fn group(&self, device: &str, rule: RuleId) -> Option<&Group> {
        self.groups.get(&(device.to_string(), rule))
    }

    /// Groups in device, then catalogue order.
    pub fn groups(&self) -> impl Iterator<Item = (&str, RuleId, &Group)> {
        self.groups.iter().map(|((d, r), g)| (d.as_str(), *r, g))
    }

    /// Devices with findings.
    pub fn devices(&self) -> BTreeSet<&str> {
        self.groups.keys().map(|(d, _)| d.as_str()).collect()
    }

    /// The text report: per device, per rule, the claim and up to `shown` observations.
    pub fn text(&self, shown: usize) -> String {
        let mut out = String::new();
        if self.total == 0 {
            out.push_str("conformance: no findings\n");
            return out;
        }
        let devices = self.devices();
        out.push_str(&format!(
            "conformance: {} finding(s) for {} device(s)\n",
            self.total,
            devices.len()
        ));
        for device in devices {
            let n: u64 = self
                .groups()
                .filter(|(d, _, _)| *d == device)
                .map(|(_, _, g)| g.count)
                .sum();
            out.push_str(&format!("\n{device}: {n} finding(s)\n"));
            for (_, rule, g) in self.groups().filter(|(d, _, _)| *d == device) {
                out.push_str(&format!(
                    "  {:<7} {rule} ({}): {}\n",
                    g.severity.to_string(),
                    g.count,
                    rule.rule().summary
                ));
                for f in g.examples.iter().take(shown) {
                    out.push_str(&format!("    [{}] claims {}\n", f.ae, f.claim));
                    out.push_str(&format!("      observed {}\n", f.observed));
                    out.push_str(&format!("      {}\n", evidence_line(f)));
                }
                if g.count > shown as u64 {
                    out.push_str(&format!("    ... and {} more\n", g.count - shown as u64));
                }
            }
        }
        out
    }
}

/// "association #3, message 5, acceptor offset 1234, 2026-11-27T08:00:00.123456Z, capture.pcapng"
pub fn evidence_line(f: &ConformanceFinding) -> String {
    let e = &f.evidence;
    let mut parts = vec![format!("association #{}", e.association)];
    if let Some(m) = e.message_id {
        parts.push(format!("message {m}"));
    }
    if let (Some(from), Some(off)) = (e.from, e.offset) {
        parts.push(format!("{from} offset {off}"));
    }
    if let Some(i) = &e.sop_instance {
        parts.push(format!("instance {i}"));
    }
    parts.push(crate::text::timestamp(e.ts_us));
    if let Some(s) = &e.source {
        parts.push(s.clone());
    }
    for r in &e.related {
        parts.push(format!(
            "after {} (association #{}{}, {})",
            r.what,
            r.association,
            r.message_id
                .map_or_else(String::new, |m| format!(", message {m}")),
            crate::text::timestamp(r.ts_us)
        ));
    }
    parts.join(", ")
}
