//! Probe reports: text, JSON (serde of [`ProbeReport`]), self-contained HTML, JUnit XML
//! (one test case per check; fail = failure, differs-from-statement = failure with its
//! own type, skipped = skipped). Text, HTML and JUnit show a check's brief table (what
//! differs or failed) unless `detail` is asked for; JSON always has every row.

use dicomtap_analyzer::report::html::escape;
use std::fmt::Write as _;

use super::{CheckResult, ProbeReport, Table, Verdict};

/// The table to show of `c`: its brief one unless `detail`.
fn shown(c: &CheckResult, detail: bool) -> Option<&Table> {
    match (&c.brief, detail) {
        (Some(b), false) => Some(b),
        _ => c.table.as_ref(),
    }
}

/// One line per study written, for the end of a report.
fn written_lines(r: &ProbeReport) -> Vec<String> {
    r.written
        .iter()
        .map(|w| {
            format!(
                "{}  patient {} (ID {}), {} instance{} ({})",
                w.study_uid,
                w.patient_name,
                w.patient_id,
                w.instances,
                if w.instances == 1 { "" } else { "s" },
                w.check.name()
            )
        })
        .collect()
}

/// A table as aligned text, headers first, each line after `indent`, columns two spaces
/// apart. `trim_end` drops what trails a line's last non-blank cell (the matrix on the
/// terminal); the report keeps its lines as they are.
pub fn table_text(t: &Table, indent: &str, trim_end: bool, out: &mut String) {
    let cols = t.headers.len();
    let mut width = vec![0usize; cols];
    for row in std::iter::once(&t.headers).chain(&t.rows) {
        for (i, c) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for row in std::iter::once(&t.headers).chain(&t.rows) {
        let start = out.len();
        out.push_str(indent);
        for (i, c) in row.iter().enumerate().take(cols) {
            let pad = width[i].saturating_sub(c.chars().count());
            out.push_str(c);
            if i + 1 < cols {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        if trim_end {
            let kept = out[start..].trim_end().len();
            out.truncate(start + kept);
        }
        out.push('\n');
    }
}

/// Plain text, one block per check; `detail`: every table row.
pub fn to_text(r: &ProbeReport, detail: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "probe {} (called {}, calling {}){}",
        r.target,
        r.called_ae,
        r.calling_ae,
        r.statement
            .as_ref()
            .map(|s| format!(", statement {s}"))
            .unwrap_or_default()
    );
    if let Some(t) = &r.tls {
        let _ = writeln!(out, "TLS {} {}", t.version, t.cipher_suite);
    }
    for c in &r.results {
        let _ = writeln!(
            out,
            "{:<24} {:<11} {}",
            c.verdict.as_str(),
            c.check.name(),
            c.summary
        );
        for d in &c.details {
            let _ = writeln!(out, "    {d}");
        }
        if let Some(t) = shown(c, detail)
            && !t.rows.is_empty()
        {
            table_text(t, "    ", false, &mut out);
            if !detail
                && c.brief.is_some()
                && c.table
                    .as_ref()
                    .is_some_and(|f| f.rows.len() > t.rows.len())
            {
                let _ = writeln!(
                    out,
                    "    ({} rows in all: --detail or --json for every one)",
                    c.table.as_ref().map(|f| f.rows.len()).unwrap_or(0)
                );
            }
        }
    }
    if let Some(s) = &r.stopped {
        let _ = writeln!(out, "stopped: {s}");
    }
    let _ = writeln!(
        out,
        "{} checks: {} pass, {} fail, {} differ from the statement, {} skipped",
        r.results.len(),
        r.count(Verdict::Pass),
        r.count(Verdict::Fail),
        r.count(Verdict::DiffersFromStatement),
        r.count(Verdict::Skipped)
    );
    let lines = written_lines(r);
    if lines.is_empty() {
        let _ = writeln!(out, "nothing was written to the device");
    } else {
        let _ = writeln!(
            out,
            "written to the device ({} studies; delete them when done):",
            lines.len()
        );
        for l in lines {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}

/// A self-contained HTML page; `detail`: every table row.
pub fn to_html(r: &ProbeReport, detail: bool) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dicomtap probe {t}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}\
.pass{{color:#080}}.fail{{color:#c00}}.differs-from-statement{{color:#b60}}.skipped{{color:#666}}</style></head><body>\
<h1>dicomtap probe {t}</h1><p>called AE {c}, calling AE {g}{s}</p>",
        t = escape(&r.target),
        c = escape(&r.called_ae),
        g = escape(&r.calling_ae),
        s = r
            .statement
            .as_ref()
            .map(|s| format!(", statement {}", escape(s)))
            .unwrap_or_default()
    );
    if let Some(t) = &r.tls {
        let _ = write!(
            h,
            "<p>TLS {} {}</p>",
            escape(&t.version),
            escape(&t.cipher_suite)
        );
    }
    let _ = write!(
        h,
        "<table><tr><th>check</th><th>verdict</th><th>summary</th><th>ms</th></tr>"
    );
    for c in &r.results {
        let _ = write!(
            h,
            "<tr><td><a href=\"#{n}\">{n}</a></td><td class=\"{v}\">{v}</td><td>{s}</td><td>{d}</td></tr>",
            n = c.check.name(),
            v = c.verdict.as_str(),
            s = escape(&c.summary),
            d = c.duration_ms
        );
    }
    h.push_str("</table>");
    for c in &r.results {
        let _ = write!(
            h,
            "<h2 id=\"{n}\">{n}: <span class=\"{v}\">{v}</span></h2><p>{s}</p>",
            n = c.check.name(),
            v = c.verdict.as_str(),
            s = escape(&c.summary)
        );
        if !c.details.is_empty() {
            h.push_str("<ul>");
            for d in &c.details {
                let _ = write!(h, "<li>{}</li>", escape(d));
            }
            h.push_str("</ul>");
        }
        if let Some(t) = shown(c, detail)
            && !t.rows.is_empty()
        {
            h.push_str("<table><tr>");
            for x in &t.headers {
                let _ = write!(h, "<th>{}</th>", escape(x));
            }
            h.push_str("</tr>");
            for row in &t.rows {
                h.push_str("<tr>");
                for x in row {
                    let _ = write!(h, "<td>{}</td>", escape(x));
                }
                h.push_str("</tr>");
            }
            h.push_str("</table>");
        }
    }
    if let Some(s) = &r.stopped {
        let _ = write!(h, "<p class=\"fail\">stopped: {}</p>", escape(s));
    }
    let lines = written_lines(r);
    if lines.is_empty() {
        h.push_str("<h2 id=\"written\">Written to the device</h2><p>nothing</p>");
    } else {
        let _ = write!(
            h,
            "<h2 id=\"written\">Written to the device ({} studies; delete them when done)</h2><ul>",
            lines.len()
        );
        for l in lines {
            let _ = write!(h, "<li>{}</li>", escape(&l));
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

/// JUnit XML: one suite, one test case per check; `detail`: every table row.
pub fn to_junit(r: &ProbeReport, detail: bool) -> String {
    let mut x = String::new();
    let total_ms: u64 = r.results.iter().map(|c| c.duration_ms).sum();
    let failures = r.count(Verdict::Fail) + r.count(Verdict::DiffersFromStatement);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites><testsuite name=\"dicomtap probe {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        escape(&r.target),
        r.results.len(),
        failures,
        r.count(Verdict::Skipped),
        total_ms as f64 / 1000.0
    );
    if let Some(t) = &r.tls {
        let _ = writeln!(
            x,
            "  <properties><property name=\"tls.version\" value=\"{}\"/><property name=\"tls.cipher_suite\" value=\"{}\"/></properties>",
            escape(&t.version),
            escape(&t.cipher_suite)
        );
    }
    for c in &r.results {
        let mut body = c.details.join("\n");
        if let Some(t) = shown(c, detail)
            && !t.rows.is_empty()
        {
            let mut s = String::new();
            table_text(t, "    ", false, &mut s);
            body.push('\n');
            body.push_str(&s);
        }
        let _ = write!(
            x,
            "  <testcase classname=\"probe.{}\" name=\"{}\" time=\"{:.3}\">",
            escape(&r.called_ae),
            c.check.name(),
            c.duration_ms as f64 / 1000.0
        );
        match c.verdict {
            Verdict::Pass => {}
            Verdict::Skipped => {
                let _ = write!(x, "<skipped message=\"{}\"/>", escape(&c.summary));
            }
            v => {
                let _ = write!(
                    x,
                    "<failure type=\"{}\" message=\"{}\">{}</failure>",
                    v.as_str(),
                    escape(&c.summary),
                    escape(&body)
                );
            }
        }
        x.push_str("<system-out>");
        x.push_str(&escape(&body));
        x.push_str("</system-out></testcase>\n");
    }
    x.push_str("</testsuite></testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::super::{Check, CheckResult, ProbeReport, Verdict};
    use super::*;

    #[test]
    fn outputs_escape_and_count() {
        let r = ProbeReport {
            target: "127.0.0.1:104".into(),
            called_ae: "A<B".into(),
            calling_ae: "X".into(),
            statement: None,
            tls: None,
            started_us: 0,
            planned_writes: Vec::new(),
            written: Vec::new(),
            stopped: None,
            results: vec![
                CheckResult::new(Check::Echo, Verdict::Pass, "ok"),
                CheckResult::new(Check::Commitment, Verdict::Fail, "silent <Success>"),
            ],
        };
        assert!(to_text(&r, false).contains("1 pass, 1 fail"));
        let j = to_junit(&r, false);
        assert!(j.contains("failures=\"1\""));
        assert!(j.contains("silent &lt;Success&gt;"));
        assert!(to_html(&r, false).contains("A&lt;B"));
    }
}
