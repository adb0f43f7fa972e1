//! JUnit XML of conformance findings, for CI pipelines of integration projects: one test
//! suite per device, one test case per device and rule. A test case fails when the rule
//! has a finding at or above the threshold severity; it is skipped when the device took
//! part in no association of the traffic; otherwise it passes (findings below the
//! threshold are listed in its output).

use std::fmt::Write as _;

use dicomtap_wire::Severity;

use super::report::{FindingReport, evidence_line};
use super::rules::RuleId;

/// Escapes text for XML attributes and content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML document. `devices` are the devices of the loaded statements (each gets
/// a test suite, with or without findings), `seen` those that took part in the traffic.
pub fn junit_xml(
    report: &FindingReport,
    devices: &[String],
    seen: &[String],
    threshold: Severity,
) -> String {
    let mut all: Vec<&str> = devices.iter().map(String::as_str).collect();
    for d in report.devices() {
        if !all.contains(&d) {
            all.push(d);
        }
    }
    let mut suites = String::new();
    let (mut tests, mut failures, mut skipped) = (0usize, 0usize, 0usize);
    for device in &all {
        let was_seen = seen.iter().any(|s| s == device) || report.devices().contains(device);
        let (mut t, mut f, mut s) = (0usize, 0usize, 0usize);
        let mut cases = String::new();
        for rule in RuleId::ALL {
            t += 1;
            let name = escape(rule.as_str());
            let class = escape(&format!("conformance.{device}"));
            let _ = write!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">"
            );
            match report.group(device, rule) {
                Some(g) if g.severity >= threshold => {
                    f += 1;
                    let first = g
                        .examples
                        .first()
                        .map(|x| x.observed.as_str())
                        .unwrap_or("");
                    let _ = write!(
                        cases,
                        "\n      <failure type=\"{name}\" message=\"{} {} finding(s): {}\">",
                        g.severity,
                        g.count,
                        escape(first)
                    );
                    let mut body = format!(
                        "{}\nWhy it matters: {}\n\n",
                        rule.rule().summary,
                        rule.rule().why
                    );
                    for x in &g.examples {
                        let _ = writeln!(
                            body,
                            "[{}] {} claims {}\n  observed {}\n  {}",
                            x.severity,
                            x.ae,
                            x.claim,
                            x.observed,
                            evidence_line(x)
                        );
                    }
                    if g.count > g.examples.len() as u64 {
                        let _ =
                            writeln!(body, "... and {} more", g.count - g.examples.len() as u64);
                    }
                    let _ = write!(cases, "{}</failure>\n    ", escape(&body));
                }
                Some(g) => {
                    let mut body = String::new();
                    for x in &g.examples {
                        let _ = writeln!(body, "[{}] {}: {}", x.severity, x.ae, x.observed);
                    }
                    let _ = write!(
                        cases,
                        "\n      <system-out>{}</system-out>\n    ",
                        escape(&body)
                    );
                }
                None if !was_seen => {
                    s += 1;
                    cases.push_str("\n      <skipped message=\"no association of this device in the traffic\"/>\n    ");
                }
                None => {}
            }
            cases.push_str("</testcase>\n");
        }
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"0\" skipped=\"{s}\">\n{cases}  </testsuite>\n",
            escape(&format!("conformance.{device}"))
        );
        tests += t;
        failures += f;
        skipped += s;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"dicomtap conformance\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{suites}</testsuites>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{ConformanceFinding, Evidence};

    fn finding(device: &str, rule: RuleId, observed: &str) -> ConformanceFinding {
        ConformanceFinding {
            rule,
            severity: rule.severity(),
            device: device.into(),
            ae: "AE<1>".into(),
            claim: "c".into(),
            observed: observed.into(),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn one_case_per_device_and_rule_with_threshold_and_skips() {
        let mut r = FindingReport::default();
        r.add(&finding("A", RuleId::SilentSuccess, "lost \"x\" & <y>"));
        r.add(&finding("A", RuleId::TimeoutLongerThanClaimed, "info only"));
        let devices = vec!["A".to_string(), "B".to_string()];
        let xml = junit_xml(&r, &devices, &["A".to_string()], Severity::Warning);
        let n = RuleId::ALL.len();
        assert!(
            xml.contains(&format!(
                "tests=\"{}\" failures=\"1\" errors=\"0\" skipped=\"{n}\"",
                2 * n
            )),
            "{xml}"
        );
        assert!(xml.contains("lost &quot;x&quot; &amp; &lt;y&gt;"));
        assert!(xml.contains("<system-out>[info] AE&lt;1&gt;: info only"));
        // With the threshold at info, the info finding fails too.
        let xml = junit_xml(&r, &devices, &["A".to_string()], Severity::Info);
        assert!(xml.contains("failures=\"2\""), "{xml}");
        assert_eq!(escape("a\u{1}b"), "a?b");
    }
}
