//! The self-contained HTML report: inline CSS and SVG, no script, no network access
//! needed to view it.

use std::fmt::Write;

use super::{LATENCY_BUCKETS_MS, Report};
use crate::text;

/// Associations drawn on the timeline; the table still lists all kept rows.
const TIMELINE_ROWS: usize = 400;

/// Escapes text for HTML element content and attribute values; control characters
/// (from the wire: AE titles, comments) become U+FFFD, as HTML does not allow them.
/// The one HTML escaper of the project (reports, probe, statement diff, fleet).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}.error{color:#b00020}.warning{color:#a05a00}.info{color:#555}\
.ok{color:#1b5e20}svg text{font:11px system-ui,sans-serif}.muted{color:#777}";

/// Renders the report as one HTML document.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let title = escape(&r.title);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(h, "<h1>{title}</h1>");
    if !r.sources.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">Sources: {}</p>",
            escape(&r.sources.join(", "))
        );
    }
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == dicomtap_wire::Severity::Error)
        .count();
    let warnings = r
        .findings
        .iter()
        .filter(|f| f.severity == dicomtap_wire::Severity::Warning)
        .count();
    let _ = write!(
        h,
        "<p id=\"summary\"><b>{}</b> associations, <b>{}</b> devices, <span class=\"error\"><b>{errors}</b> errors</span>, <span class=\"warning\"><b>{warnings}</b> warnings</span>.</p>",
        r.rows.len(),
        r.devices.len()
    );
    timeline(r, &mut h);
    devices(r, &mut h);
    latency(r, &mut h);
    findings(r, &mut h);
    associations(r, &mut h);
    h.push_str("</body></html>\n");
    h
}

fn timeline(r: &Report, h: &mut String) {
    h.push_str("<h2 id=\"timeline\">Timeline</h2>");
    let rows: Vec<_> = r.rows.iter().take(TIMELINE_ROWS).collect();
    let (Some(t0), Some(t1)) = (
        rows.iter().map(|r| r.start_us).min(),
        rows.iter().map(|r| r.end_us).max(),
    ) else {
        h.push_str("<p>No associations.</p>");
        return;
    };
    let span = (t1 - t0).max(1) as f64;
    let (width, label_w, row_h) = (990.0, 260.0, 16.0);
    let height = rows.len() as f64 * row_h + 30.0;
    let _ = write!(
        h,
        "<svg width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"association timeline\">",
        width + label_w + 10.0
    );
    let _ = write!(
        h,
        "<text x=\"{label_w}\" y=\"12\">{}</text><text x=\"{}\" y=\"12\" text-anchor=\"end\">{}</text>",
        text::timestamp(t0),
        width + label_w,
        text::timestamp(t1)
    );
    for (i, row) in rows.iter().enumerate() {
        let y = 20.0 + i as f64 * row_h;
        let x = label_w + (row.start_us - t0) as f64 / span * width;
        let w = ((row.end_us.saturating_sub(row.start_us)) as f64 / span * width).max(2.0);
        let color = if row.errors > 0 || row.outcome == "rejected" || row.failures > 0 {
            "#d32f2f"
        } else if row.warnings > 0 || row.ending.starts_with("aborted") || row.outcome != "accepted"
        {
            "#f9a825"
        } else {
            "#43a047"
        };
        let label = escape(&format!(
            "#{} {} → {}",
            row.id, row.calling_ae, row.called_ae
        ));
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{}\">{label}</text><rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"><title>{label}: {} requests, {}, {}</title></rect>",
            y + 11.0,
            row_h - 4.0,
            row.requests,
            escape(&row.outcome),
            escape(&row.ending)
        );
    }
    h.push_str("</svg>");
    if r.rows.len() > TIMELINE_ROWS {
        let _ = write!(
            h,
            "<p class=\"muted\">The first {TIMELINE_ROWS} associations are drawn; all are listed below.</p>"
        );
    }
}

fn devices(r: &Report, h: &mut String) {
    h.push_str("<h2 id=\"devices\">Devices</h2><table><tr><th>AE title</th><th>as requestor</th><th>as acceptor</th><th>rejected</th><th>aborted</th><th>requests sent</th><th>success</th><th>warning</th><th>failure</th><th>bytes sent</th><th>implementation</th></tr>");
    for (ae, d) in &r.devices {
        let imp: Vec<String> = d
            .implementation
            .iter()
            .map(|(k, n)| format!("{} ({n})", escape(k)))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n ok\">{}</td><td class=\"n warning\">{}</td><td class=\"n error\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(ae),
            d.as_requestor,
            d.as_acceptor,
            d.rejected,
            d.aborted,
            d.requests,
            d.success,
            d.warning,
            d.failure,
            text::bytes(d.bytes_sent),
            imp.join("<br>")
        );
    }
    h.push_str("</table>");
}

fn latency(r: &Report, h: &mut String) {
    h.push_str("<h2 id=\"latency\">Response latency</h2>");
    if r.latency.is_empty() {
        h.push_str("<p>No answered requests.</p>");
        return;
    }
    for (service, counts) in &r.latency {
        let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let total: u64 = counts.iter().sum();
        let _ = write!(
            h,
            "<h3>{} <span class=\"muted\">({total} responses)</span></h3>",
            escape(service)
        );
        let (bw, bh) = (60.0, 100.0);
        let _ = write!(
            h,
            "<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{} latency histogram\">",
            bw * counts.len() as f64,
            bh + 34.0,
            escape(service)
        );
        for (i, (&n, &b)) in counts.iter().zip(LATENCY_BUCKETS_MS.iter()).enumerate() {
            let hgt = n as f64 / max * bh;
            let x = i as f64 * bw;
            let label = if b.is_finite() {
                format!("≤{b} ms")
            } else {
                "more".to_string()
            };
            let _ = write!(
                h,
                "<rect x=\"{}\" y=\"{:.1}\" width=\"{}\" height=\"{hgt:.1}\" fill=\"#1976d2\"><title>{label}: {n}</title></rect><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + 5.0,
                bh - hgt + 12.0,
                bw - 10.0,
                x + bw / 2.0,
                bh + 28.0,
                x + bw / 2.0,
                bh - hgt + 10.0,
                if n > 0 { n.to_string() } else { String::new() }
            );
        }
        h.push_str("</svg>");
    }
}

fn findings(r: &Report, h: &mut String) {
    let _ = write!(
        h,
        "<h2 id=\"findings\">Findings ({})</h2>",
        r.findings.len()
    );
    if r.findings.is_empty() {
        h.push_str("<p class=\"ok\">No findings.</p>");
        return;
    }
    h.push_str("<table><tr><th>severity</th><th>rule / code</th><th>device</th><th>association</th><th>time</th><th>what</th></tr>");
    let mut sorted: Vec<_> = r.findings.iter().collect();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.ts_us.cmp(&b.ts_us)));
    for f in sorted {
        let _ = write!(
            h,
            "<tr class=\"{sev}\"><td>{sev}</td><td>{}</td><td>{}</td><td>#{}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.code),
            escape(&f.device),
            f.association,
            text::timestamp(f.ts_us),
            escape(&f.message),
            sev = f.severity
        );
    }
    h.push_str("</table>");
    if r.findings_dropped > 0 {
        let _ = write!(
            h,
            "<p class=\"muted\">{} more findings not listed.</p>",
            r.findings_dropped
        );
    }
}

fn associations(r: &Report, h: &mut String) {
    h.push_str("<h2 id=\"associations\">Associations</h2><table><tr><th>#</th><th>start</th><th>client → server</th><th>calling → called</th><th>outcome</th><th>contexts</th><th>requests</th><th>failures</th><th>bytes</th><th>duration</th><th>ending</th><th>findings</th></tr>");
    for row in &r.rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{} → {}</td><td>{}</td><td class=\"n\">{}/{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.3} s</td><td>{}</td><td class=\"n\">{}</td></tr>",
            row.id,
            text::timestamp(row.start_us),
            escape(&row.client),
            escape(&row.server),
            escape(&row.calling_ae),
            escape(&row.called_ae),
            escape(&row.outcome),
            row.accepted,
            row.proposed,
            row.requests,
            row.failures,
            text::bytes(row.bytes),
            row.end_us.saturating_sub(row.start_us) as f64 / 1e6,
            escape(&row.ending),
            row.errors + row.warnings
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn empty_report_renders() {
        let html = super::render(&super::Report::new("t<>"));
        assert!(html.contains("<title>t&lt;&gt;</title>"));
        assert!(html.contains("No associations."));
    }
}
