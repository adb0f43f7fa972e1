//! The scope at a glance: per pair an outcome (fail, degrade, work, not applicable), the
//! counts, and what fails or degrades grouped by reason; the default text output of
//! `statement diff` and the `summary` object of its JSON.

use std::fmt::Write as _;

use super::predict::{brief, is_compressed};
use super::*;

/// Finding lines shown per pair in the text summary; the rest is counted.
pub const MAX_FINDINGS_PER_PAIR: usize = 6;
/// SOP classes named on one finding line; the rest is counted.
const SOP_CLASSES_PER_LINE: usize = 3;

/// A pair's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The association is rejected, or a SOP class fails (rejected context, or a
    /// failure-level difference such as role selection or storage commitment): the pair's
    /// verdict is not `ok`.
    Fail,
    /// Every context is accepted and nothing fails, but a warning-level difference
    /// degrades it (compression lost, lossy only, PDU size, character sets, role
    /// selection, extended negotiation, storage commitment wait...).
    Degrade,
    /// Every context accepted, no warning.
    Work,
    /// The initiator proposes nothing the acceptor claims in any role.
    NotApplicable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fail => "fail",
            Outcome::Degrade => "degrade",
            Outcome::Work => "work",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// Whether a finding makes the pair fail or degrades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingLevel {
    Fail,
    Degrade,
}

impl FindingLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingLevel::Fail => "fail",
            FindingLevel::Degrade => "degrade",
        }
    }
}

/// What a finding is about: no context accepted, a context rejected, or the topic of a
/// difference. JSON and the reports spell it in kebab-case (`nothing-accepted`,
/// `sop-class-not-accepted`, `no-common-transfer-syntax`, or the topic: `tls`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    NothingAccepted,
    SopClassNotAccepted,
    NoCommonTransferSyntax,
    Topic(Topic),
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::NothingAccepted => "nothing-accepted",
            FindingKind::SopClassNotAccepted => "sop-class-not-accepted",
            FindingKind::NoCommonTransferSyntax => "no-common-transfer-syntax",
            FindingKind::Topic(t) => t.as_str(),
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for FindingKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for FindingKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One reason, with every SOP class it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: FindingLevel,
    pub kind: FindingKind,
    /// The SOP classes concerned (keyword, or UID when there is none; " (as SCP)" when
    /// the initiator takes the SCP role); empty for association-level findings.
    pub sop_classes: Vec<String>,
    pub reason: String,
}

/// One initiator AE against one acceptor AE of another statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairSummary {
    pub initiator: Endpoint,
    pub acceptor: Endpoint,
    pub outcome: Outcome,
    /// Index of the pair in `pairs`; absent when not applicable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<usize>,
    /// Presentation contexts proposed (one per SOP class and role).
    pub proposed: usize,
    /// Contexts predicted to be accepted (0 when the association is rejected).
    pub negotiated: usize,
    /// Of those, the ones with a compressed transfer syntax in common.
    pub with_compression: usize,
    /// SOP classes that fail (rejected, or accepted with a failure-level difference).
    pub failing_sop_classes: usize,
    /// SOP classes accepted with a warning-level difference and no failure.
    pub degraded_sop_classes: usize,
    /// Fail findings first, then degrade, association-level before SOP class level.
    pub findings: Vec<Finding>,
}

/// Totals over the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SummaryCounts {
    /// Distinct devices (statements) compared.
    pub devices: usize,
    /// Initiator→acceptor pairs with something to negotiate (fail + degrade + work).
    pub pairs: usize,
    pub fail: usize,
    pub degrade: usize,
    pub work: usize,
    /// Initiator AE × acceptor AE combinations with no SOP class in common (not counted
    /// in `pairs`).
    pub not_applicable: usize,
}

/// The `summary` object of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub counts: SummaryCounts,
    /// Every pair, most severe first (fail, degrade, work, then not applicable).
    pub pairs: Vec<PairSummary>,
}

impl Summary {
    /// The summary of one initiator/acceptor combination, if they were compared.
    pub fn get(&self, initiator: &Endpoint, acceptor: &Endpoint) -> Option<&PairSummary> {
        self.pairs
            .iter()
            .find(|p| &p.initiator == initiator && &p.acceptor == acceptor)
    }
}

fn sop_label(c: &ContextPrediction) -> String {
    if c.initiator_role == Role::Scp {
        format!("{} (as SCP)", c.sop_class.label())
    } else {
        c.sop_class.label().to_owned()
    }
}

/// Adds a finding, merging it into an earlier one with the same level, kind and reason.
fn add(
    v: &mut Vec<Finding>,
    level: FindingLevel,
    kind: FindingKind,
    sop: Option<String>,
    reason: String,
) {
    if let Some(f) = v
        .iter_mut()
        .find(|f| f.level == level && f.kind == kind && f.reason == reason)
    {
        if let Some(s) = sop
            && !f.sop_classes.contains(&s)
        {
            f.sop_classes.push(s);
        }
        return;
    }
    v.push(Finding {
        level,
        kind,
        sop_classes: sop.into_iter().collect(),
        reason,
    });
}

/// The summary of one compared pair (`index` into the report's pairs).
pub fn summarize_pair(p: &PairDiff, index: usize) -> PairSummary {
    use FindingLevel::{Degrade, Fail};
    let (ni, na) = (p.initiator.ae.as_str(), p.acceptor.ae.as_str());
    let association_fails = p
        .association
        .iter()
        .any(|x| x.severity == IssueSeverity::Failure);
    let mut assoc = Vec::new();
    let mut fails = Vec::new();
    let mut degrades = Vec::new();
    for x in &p.association {
        match x.severity {
            IssueSeverity::Failure => add(
                &mut assoc,
                Fail,
                FindingKind::Topic(x.topic),
                None,
                format!("association rejected: {}", x.message),
            ),
            IssueSeverity::Warning => add(
                &mut degrades,
                Degrade,
                FindingKind::Topic(x.topic),
                None,
                x.message.clone(),
            ),
            IssueSeverity::Info => {}
        }
    }
    let accepted = p.contexts.iter().filter(|c| c.accepted).count();
    if !association_fails && accepted == 0 {
        add(
            &mut assoc,
            Fail,
            FindingKind::NothingAccepted,
            None,
            format!(
                "no presentation context accepted: {na} takes none of the SOP classes {ni} proposes"
            ),
        );
    }
    let mut ctx_degrades = Vec::new();
    let (mut failing, mut degraded, mut compressed) = (0, 0, 0);
    for c in &p.contexts {
        let sop = sop_label(c);
        if !c.accepted {
            failing += 1;
            let (kind, reason) = match c.rejection_result {
                Some(4) => (
                    FindingKind::NoCommonTransferSyntax,
                    format!(
                        "context rejected, no common transfer syntax: {ni} proposes {}; {na} accepts {}",
                        brief(&c.proposed_transfer_syntaxes),
                        brief(&c.acceptor_transfer_syntaxes)
                    ),
                ),
                _ => (
                    FindingKind::SopClassNotAccepted,
                    format!(
                        "context rejected: not claimed by {na} as {} (abstract syntax not supported)",
                        c.initiator_role.peer()
                    ),
                ),
            };
            add(&mut fails, Fail, kind, Some(sop.clone()), reason);
        } else if c
            .common_transfer_syntaxes
            .iter()
            .any(|t| is_compressed(&t.uid))
        {
            compressed += 1;
        }
        let mut f = false;
        let mut d = false;
        for x in &c.issues {
            match x.severity {
                IssueSeverity::Failure => {
                    f = true;
                    add(
                        &mut fails,
                        Fail,
                        FindingKind::Topic(x.topic),
                        Some(sop.clone()),
                        x.message.clone(),
                    );
                }
                IssueSeverity::Warning => {
                    d = true;
                    add(
                        &mut ctx_degrades,
                        Degrade,
                        FindingKind::Topic(x.topic),
                        Some(sop.clone()),
                        x.message.clone(),
                    );
                }
                IssueSeverity::Info => {}
            }
        }
        if c.accepted && f {
            failing += 1;
        } else if c.accepted && d {
            degraded += 1;
        }
    }
    let outcome = if p.has_failure() {
        Outcome::Fail
    } else if !degrades.is_empty() || !ctx_degrades.is_empty() {
        Outcome::Degrade
    } else {
        Outcome::Work
    };
    let mut findings = assoc;
    findings.extend(fails);
    findings.extend(degrades);
    findings.extend(ctx_degrades);
    PairSummary {
        initiator: p.initiator.clone(),
        acceptor: p.acceptor.clone(),
        outcome,
        pair: Some(index),
        proposed: p.contexts.len(),
        negotiated: if association_fails { 0 } else { accepted },
        with_compression: if association_fails { 0 } else { compressed },
        failing_sop_classes: failing,
        degraded_sop_classes: degraded,
        findings,
    }
}

/// The summary of the whole report: `pairs` as compared, `not_applicable` the initiator
/// × acceptor combinations with nothing to negotiate.
pub fn summarize(
    devices: usize,
    pairs: &[PairDiff],
    not_applicable: Vec<(Endpoint, Endpoint)>,
) -> Summary {
    let mut v: Vec<PairSummary> = pairs
        .iter()
        .enumerate()
        .map(|(k, p)| summarize_pair(p, k))
        .collect();
    // Most severe first: association-level failures, then by failing then degraded
    // SOP classes; the sort is stable, so input order otherwise.
    v.sort_by_key(|s| {
        let assoc_fail = s
            .findings
            .iter()
            .any(|f| f.level == FindingLevel::Fail && f.sop_classes.is_empty());
        (
            s.outcome,
            !assoc_fail,
            std::cmp::Reverse(s.failing_sop_classes),
            std::cmp::Reverse(s.degraded_sop_classes),
        )
    });
    let count = |o: Outcome| v.iter().filter(|s| s.outcome == o).count();
    let counts = SummaryCounts {
        devices,
        pairs: v.len(),
        fail: count(Outcome::Fail),
        degrade: count(Outcome::Degrade),
        work: count(Outcome::Work),
        not_applicable: not_applicable.len(),
    };
    v.extend(not_applicable.into_iter().map(|(i, a)| PairSummary {
        initiator: i,
        acceptor: a,
        outcome: Outcome::NotApplicable,
        pair: None,
        proposed: 0,
        negotiated: 0,
        with_compression: 0,
        failing_sop_classes: 0,
        degraded_sop_classes: 0,
        findings: Vec::new(),
    }));
    Summary { counts, pairs: v }
}

impl Endpoint {
    /// "AE (DEVICE)", or "AE" alone when the device has the same name.
    pub fn long_label(&self) -> String {
        if self.ae == self.device {
            self.ae.clone()
        } else {
            format!("{} ({})", self.ae, self.device)
        }
    }
}

/// The SOP classes of a finding for one line: at most three, then how many more.
pub fn sop_list(l: &[String]) -> String {
    let head = l
        .iter()
        .take(SOP_CLASSES_PER_LINE)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if l.len() > SOP_CLASSES_PER_LINE {
        format!("{head} and {} more", l.len() - SOP_CLASSES_PER_LINE)
    } else {
        head
    }
}

/// One line of a finding, without indentation.
pub fn finding_line(f: &Finding) -> String {
    if f.sop_classes.is_empty() {
        format!("{}: {}", f.level.as_str(), f.reason)
    } else {
        format!(
            "{}: {}: {}",
            f.level.as_str(),
            sop_list(&f.sop_classes),
            f.reason
        )
    }
}

/// The totals line: "12 devices, 30 initiator→acceptor pairs: 4 fail, 7 degrade, 19 work".
pub fn totals_line(c: &SummaryCounts) -> String {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    let mut t = format!(
        "{} device{}, {} initiator→acceptor pair{}: {} fail, {} degrade, {} work",
        c.devices,
        s(c.devices),
        c.pairs,
        s(c.pairs),
        c.fail,
        c.degrade,
        c.work
    );
    if c.not_applicable > 0 {
        let _ = write!(
            t,
            " ({} more combination{} with no SOP class in common: not applicable)",
            c.not_applicable,
            s(c.not_applicable)
        );
    }
    t
}

/// The summary as text: what fails or degrades, pair by pair and most severe first,
/// capped at `MAX_FINDINGS_PER_PAIR` lines a pair; what will negotiate; the totals.
pub fn to_summary_text(r: &DiffReport) -> String {
    let mut o = String::new();
    let sm = &r.summary;
    let bad: Vec<&PairSummary> = sm
        .pairs
        .iter()
        .filter(|p| matches!(p.outcome, Outcome::Fail | Outcome::Degrade))
        .collect();
    if bad.is_empty() {
        o.push_str("Nothing is predicted to fail or degrade.\n");
    } else {
        o.push_str("Predicted to fail or degrade (most severe first):\n");
    }
    for p in &bad {
        let _ = writeln!(
            o,
            "\n{} -> {}: {}",
            p.initiator.long_label(),
            p.acceptor.long_label(),
            p.outcome.as_str().to_uppercase()
        );
        for f in p.findings.iter().take(MAX_FINDINGS_PER_PAIR) {
            let _ = writeln!(o, "  {}", finding_line(f));
        }
        if p.findings.len() > MAX_FINDINGS_PER_PAIR {
            let _ = writeln!(
                o,
                "  ... and {} more (--detail lists every SOP class)",
                p.findings.len() - MAX_FINDINGS_PER_PAIR
            );
        }
    }
    let compared: Vec<&PairSummary> = sm
        .pairs
        .iter()
        .filter(|p| p.outcome != Outcome::NotApplicable)
        .collect();
    if !compared.is_empty() {
        o.push_str("\nWhat will negotiate:\n");
        let w = compared
            .iter()
            .map(|p| p.initiator.long_label().len() + p.acceptor.long_label().len() + 4)
            .max()
            .unwrap_or(0);
        for p in &compared {
            let label = format!(
                "{} -> {}",
                p.initiator.long_label(),
                p.acceptor.long_label()
            );
            let what = if p.negotiated == 0 {
                "nothing will negotiate".to_owned()
            } else {
                format!(
                    "{} of {} SOP class{} will negotiate ({} with compression)",
                    p.negotiated,
                    p.proposed,
                    if p.proposed == 1 { "" } else { "es" },
                    p.with_compression
                )
            };
            let _ = writeln!(o, "  {label:w$}  {:<7}  {what}", p.outcome.as_str());
        }
    }
    let na: Vec<&PairSummary> = sm
        .pairs
        .iter()
        .filter(|p| p.outcome == Outcome::NotApplicable)
        .collect();
    if !na.is_empty() {
        o.push_str("\nNot applicable (no SOP class in common):\n");
        for p in &na {
            let _ = writeln!(
                o,
                "  {} -> {}",
                p.initiator.long_label(),
                p.acceptor.long_label()
            );
        }
    }
    for d in &r.drift {
        let n = d
            .differences
            .iter()
            .filter(|x| x.severity >= IssueSeverity::Warning)
            .count();
        if n > 0 {
            let _ = writeln!(
                o,
                "\nAE title {} is in {} and {}: {n} difference{} between the two (--detail lists them)",
                d.title,
                d.claimed_by,
                d.compared,
                if n == 1 { "" } else { "s" }
            );
        }
    }
    let _ = writeln!(o, "\n{}", totals_line(&sm.counts));
    o.push_str("\nAssumptions:\n");
    for a in &r.assumptions {
        let _ = writeln!(o, "  - {a}");
    }
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::statement::parse;

    fn st(text: &str) -> Statement {
        parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An initiator proposing eight SOP classes, each with its own transfer syntax, to an
    /// acceptor that takes only implicit VR: eight different reasons.
    fn many() -> DiffReport {
        let classes = [
            ("CTImageStorage", "JPEGBaseline8Bit"),
            ("MRImageStorage", "JPEGExtended12Bit"),
            ("UltrasoundImageStorage", "JPEGLossless"),
            ("SecondaryCaptureImageStorage", "JPEGLosslessSV1"),
            ("DigitalXRayImageStorageForPresentation", "JPEGLSLossless"),
            ("ComputedRadiographyImageStorage", "JPEGLSNearLossless"),
            ("PositronEmissionTomographyImageStorage", "JPEG2000Lossless"),
            ("NuclearMedicineImageStorage", "JPEG2000"),
        ];
        let mut i = String::from(
            "schema = \"dicomtap-statement/1\"\n[device]\nname = \"I\"\n[[ae]]\ntitle = \"INI\"\ninitiator = true\nacceptor = false\n",
        );
        let mut a = String::from(
            "schema = \"dicomtap-statement/1\"\n[device]\nname = \"A\"\n[[ae]]\ntitle = \"ACC\"\ninitiator = false\nacceptor = true\n",
        );
        for (c, t) in classes {
            i.push_str(&format!(
                "[[ae.capability]]\nsop_class = \"{c}\"\nrole = \"SCU\"\ntransfer_syntaxes = [\"{t}\"]\n"
            ));
            a.push_str(&format!(
                "[[ae.capability]]\nsop_class = \"{c}\"\nrole = \"SCP\"\ntransfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n"
            ));
        }
        diff(&[st(&i), st(&a)])
    }

    #[test]
    fn finding_kinds_serialize_as_their_spelling() {
        for (k, text) in [
            (FindingKind::NothingAccepted, "nothing-accepted"),
            (FindingKind::SopClassNotAccepted, "sop-class-not-accepted"),
            (
                FindingKind::NoCommonTransferSyntax,
                "no-common-transfer-syntax",
            ),
            (FindingKind::Topic(Topic::AeAllowList), "ae-allow-list"),
        ] {
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::Value::String(text.to_string()))
            );
            assert_eq!(k, text);
        }
    }

    #[test]
    fn caps_the_findings_of_a_pair_and_detail_lists_all() {
        let r = many();
        let p = &r.summary.pairs[0];
        assert_eq!(p.outcome, Outcome::Fail, "{p:?}");
        // nothing accepted (association level), then one line per distinct reason
        assert_eq!(p.findings.len(), 9, "{p:?}");
        assert_eq!(p.findings[0].kind, "nothing-accepted");
        assert!(
            p.findings[1..]
                .iter()
                .all(|f| f.kind == "no-common-transfer-syntax" && f.sop_classes.len() == 1)
        );
        assert_eq!(p.negotiated, 0);
        assert_eq!(p.failing_sop_classes, 8);
        let t = to_summary_text(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], "INI (I) -> ACC (A): FAIL", "{t}");
        assert_eq!(
            lines[3],
            "  fail: no presentation context accepted: ACC takes none of the SOP classes INI proposes"
        );
        assert_eq!(
            lines[4],
            "  fail: CTImageStorage: context rejected, no common transfer syntax: INI proposes JPEGBaseline8Bit; ACC accepts ImplicitVRLittleEndian"
        );
        let shown = lines.iter().filter(|l| l.starts_with("  fail: ")).count();
        assert_eq!(shown, MAX_FINDINGS_PER_PAIR, "{t}");
        assert!(
            t.contains("\n  ... and 3 more (--detail lists every SOP class)\n"),
            "{t}"
        );
        assert!(!t.contains("NuclearMedicineImageStorage"), "{t}");
        // the full listing has every one
        let full = to_text(&r);
        for c in [
            "NuclearMedicineImageStorage",
            "PositronEmissionTomographyImageStorage",
        ] {
            assert!(full.contains(c), "{full}");
        }
        assert!(t.contains("\n2 devices, 1 initiator→acceptor pair: 1 fail, 0 degrade, 0 work\n"));
    }

    #[test]
    fn same_reason_is_one_line_for_many_sop_classes() {
        let i = "schema = \"dicomtap-statement/1\"\n[device]\nname = \"I\"\n[[ae]]\ntitle = \"INI\"\ninitiator = true\nacceptor = false\n\
[[ae.capability]]\nsop_class = \"CTImageStorage\"\nrole = \"SCU\"\ntransfer_syntaxes = [\"ExplicitVRLittleEndian\", \"JPEG2000Lossless\"]\n\
[[ae.capability]]\nsop_class = \"MRImageStorage\"\nrole = \"SCU\"\ntransfer_syntaxes = [\"ExplicitVRLittleEndian\", \"JPEG2000Lossless\"]\n\
[[ae.capability]]\nsop_class = \"Verification\"\nrole = \"SCU\"\ntransfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n";
        let a = "schema = \"dicomtap-statement/1\"\n[device]\nname = \"A\"\n[[ae]]\ntitle = \"ACC\"\ninitiator = false\nacceptor = true\n\
[[ae.capability]]\nsop_class = \"CTImageStorage\"\nrole = \"SCP\"\ntransfer_syntaxes = [\"ExplicitVRLittleEndian\"]\n\
[[ae.capability]]\nsop_class = \"MRImageStorage\"\nrole = \"SCP\"\ntransfer_syntaxes = [\"ExplicitVRLittleEndian\"]\n\
[[ae.capability]]\nsop_class = \"Verification\"\nrole = \"SCP\"\ntransfer_syntaxes = [\"ImplicitVRLittleEndian\"]\n";
        let r = diff(&[st(i), st(a)]);
        let p = &r.summary.pairs[0];
        // compressed proposed, only uncompressed accepted: degraded, not failed
        assert_eq!(p.outcome, Outcome::Degrade, "{p:?}");
        assert_eq!(p.findings.len(), 1, "{p:?}");
        assert_eq!(p.findings[0].kind, "compression");
        assert_eq!(
            p.findings[0].sop_classes,
            ["CTImageStorage", "MRImageStorage"]
        );
        assert_eq!(
            (p.negotiated, p.with_compression, p.degraded_sop_classes),
            (3, 0, 2)
        );
        assert!(!r.has_failure());
        let t = to_summary_text(&r);
        assert!(
            t.contains("  degrade: CTImageStorage, MRImageStorage: INI proposes compressed syntaxes (JPEG2000Lossless); ACC accepts only ExplicitVRLittleEndian: "),
            "{t}"
        );
    }

    #[test]
    fn lossy_and_compressed_transfer_syntaxes() {
        use super::super::predict::{is_compressed, is_lossy};
        for lossy in [
            "1.2.840.10008.1.2.4.50",
            "1.2.840.10008.1.2.4.81",
            "1.2.840.10008.1.2.4.91",
            "1.2.840.10008.1.2.4.100.1",
            "1.2.840.10008.1.2.4.203",
        ] {
            assert!(is_lossy(lossy) && is_compressed(lossy), "{lossy}");
        }
        for lossless in [
            "1.2.840.10008.1.2.4.57",
            "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.4.90",
            "1.2.840.10008.1.2.4.201",
            "1.2.840.10008.1.2.5",
        ] {
            assert!(!is_lossy(lossless) && is_compressed(lossless), "{lossless}");
        }
        for plain in ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.3.4"] {
            assert!(!is_lossy(plain) && !is_compressed(plain), "{plain}");
        }
        assert!(is_compressed("1.2.840.10008.1.2.1.99"));
    }
}
