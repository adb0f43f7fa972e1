//! The HTML matrix: one self-contained page (inline CSS, no external assets; a few lines
//! of optional script only open the section a matrix cell links to). Rows are initiator
//! AEs, columns acceptor AEs, each cell coloured by outcome and linked to the pair's
//! section, which lists every finding, every association-level difference and every SOP
//! class outcome.

use std::fmt::Write as _;

use super::summary::{Finding, Outcome, PairSummary, finding_line};
use super::*;
use crate::report::html::escape as esc;

/// What the page says about itself.
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions {
    pub title: String,
    /// When the report was made, as the caller wants it shown (e.g. UTC ISO 8601).
    pub generated: Option<String>,
    /// The statement files compared.
    pub sources: Vec<String>,
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}table.matrix td.cell{text-align:center;min-width:7em}table.matrix td.cell a{color:inherit;text-decoration:none;display:block}\
.fail{background:#f4c7c3}.degrade{background:#fde7a9}.work{background:#c8e6c9}.na{background:#e0e0e0;color:#666}.self{background:#fafafa;color:#aaa}\
.legend span{display:inline-block;padding:.1em .6em;margin-right:.6em;border:1px solid #ccc}\
.muted{color:#666}small{color:#444}details.pair{margin:.6em 0;border:1px solid #ccc;padding:.3em .6em}\
details.pair>summary{cursor:pointer;font-weight:600}details.pair:target{outline:2px solid #1565c0}\
li.failure,span.failure{color:#a00}li.warning,span.warning{color:#8a5a00}li.info,span.info{color:#555}\
li.fail-item{color:#a00}li.degrade-item{color:#8a5a00}td.rej{background:#f4c7c3}td.acc{background:#e8f5e9}code{font-size:.9em}\
.ok{color:#1b5e20}.partial{color:#8a5a00}.incompatible{color:#a00}";

/// Opens the `<details>` a link points to (the page reads the same without it).
const SCRIPT: &str = "function o(){var e=location.hash&&document.getElementById(location.hash.slice(1));if(e&&e.tagName==='DETAILS'){e.open=true;}}window.addEventListener('hashchange',o);window.addEventListener('DOMContentLoaded',o);";

/// The page with only a title.
pub fn to_html(r: &DiffReport, title: &str) -> String {
    to_html_with(
        r,
        &HtmlOptions {
            title: title.to_owned(),
            ..HtmlOptions::default()
        },
    )
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Fail => "fail",
        Outcome::Degrade => "degrade",
        Outcome::Work => "work",
        Outcome::NotApplicable => "na",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Compatible => "ok",
        Verdict::Partial => "partial",
        Verdict::Incompatible => "incompatible",
    }
}

fn severity_class(s: IssueSeverity) -> &'static str {
    match s {
        IssueSeverity::Failure => "failure",
        IssueSeverity::Warning => "warning",
        IssueSeverity::Info => "info",
    }
}

fn endpoint_cell(e: &Endpoint) -> String {
    format!("{}<br><small>{}</small>", esc(&e.ae), esc(&e.device))
}

/// The anchor of a pair's section.
fn anchor(k: usize) -> String {
    format!("pair-{k}")
}

/// The page: title, generation time and sources, legend, matrix, one section per pair,
/// drift, assumptions.
pub fn to_html_with(r: &DiffReport, opts: &HtmlOptions) -> String {
    let mut o = String::new();
    let title = esc(&opts.title);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>{STYLE}</style>\n<script>{SCRIPT}</script></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(g) = &opts.generated {
        let _ = writeln!(o, "<p class=\"muted\">Generated {}.</p>", esc(g));
    }
    if !opts.sources.is_empty() {
        o.push_str("<p class=\"muted\">Statements:</p><ul class=\"muted\">");
        for s in &opts.sources {
            let _ = write!(o, "<li><code>{}</code></li>", esc(s));
        }
        o.push_str("</ul>\n");
    }
    let sm = &r.summary;
    let _ = writeln!(
        o,
        "<p id=\"totals\"><strong>{}</strong></p>",
        esc(&super::summary::totals_line(&sm.counts))
    );
    o.push_str(
        "<p class=\"legend\"><span class=\"fail\">fail</span>association rejected or a SOP class fails \
<span class=\"degrade\">degrade</span>works, with a warning-level difference \
<span class=\"work\">work</span>every SOP class negotiates, no warning \
<span class=\"na\">n/a</span>no SOP class in common \
<span class=\"self\">&mdash;</span>same device</p>\n",
    );

    // The matrix.
    let mut rows: Vec<&Endpoint> = Vec::new();
    let mut cols: Vec<&Endpoint> = Vec::new();
    for e in &r.endpoints {
        if sm.pairs.iter().any(|p| &p.initiator == e) {
            rows.push(e);
        }
        if sm.pairs.iter().any(|p| &p.acceptor == e) {
            cols.push(e);
        }
    }
    o.push_str("<h2>Compatibility matrix</h2>\n<p>Rows: initiator AE (device); columns: acceptor AE (device). Each cell: outcome, SOP classes negotiated of those proposed, failing and degraded SOP classes; it links to the pair's details below.</p>\n");
    if rows.is_empty() || cols.is_empty() {
        o.push_str("<p>No initiator AE and acceptor AE of different statements to compare.</p>\n");
    } else {
        o.push_str("<table class=\"matrix\"><tr><th>initiator \\ acceptor</th>");
        for c in &cols {
            let _ = write!(o, "<th>{}</th>", endpoint_cell(c));
        }
        o.push_str("</tr>\n");
        for rw in &rows {
            let _ = write!(o, "<tr><th>{}</th>", endpoint_cell(rw));
            for c in &cols {
                match sm.get(rw, c) {
                    Some(s) => cell(&mut o, s),
                    None => {
                        o.push_str("<td class=\"cell self\" title=\"same device\">&mdash;</td>")
                    }
                }
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
    }

    // One section per compared pair, most severe first.
    o.push_str("<h2>Pairs</h2>\n");
    for s in &sm.pairs {
        let Some(k) = s.pair else { continue };
        let Some(p) = r.pairs.get(k) else { continue };
        pair_section(&mut o, s, p, k);
    }
    let na: Vec<&PairSummary> = sm
        .pairs
        .iter()
        .filter(|p| p.outcome == Outcome::NotApplicable)
        .collect();
    if !na.is_empty() {
        o.push_str("<h3>Not applicable (no SOP class in common)</h3>\n<ul>");
        for p in na {
            let _ = write!(
                o,
                "<li>{} &rarr; {}</li>",
                esc(&p.initiator.long_label()),
                esc(&p.acceptor.long_label())
            );
        }
        o.push_str("</ul>\n");
    }
    for dr in &r.drift {
        let _ = writeln!(
            o,
            "<h2>AE {} in {} (claim) and {} (compared)</h2>\n<ul>",
            esc(&dr.title),
            esc(&dr.claimed_by),
            esc(&dr.compared)
        );
        for x in &dr.differences {
            issue_li(&mut o, x);
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<h2>Assumptions</h2>\n<ul>\n");
    for a in &r.assumptions {
        let _ = writeln!(o, "<li>{}</li>", esc(a));
    }
    o.push_str("</ul>\n</body></html>\n");
    o
}

fn cell(o: &mut String, s: &PairSummary) {
    let class = outcome_class(s.outcome);
    let title = esc(&format!(
        "{} to {}: {}",
        s.initiator.long_label(),
        s.acceptor.long_label(),
        s.outcome.as_str()
    ));
    let Some(k) = s.pair else {
        let _ = write!(o, "<td class=\"cell {class}\" title=\"{title}\">n/a</td>");
        return;
    };
    let mut extra = Vec::new();
    if s.failing_sop_classes > 0 {
        extra.push(format!("{} failing", s.failing_sop_classes));
    }
    if s.degraded_sop_classes > 0 {
        extra.push(format!("{} degraded", s.degraded_sop_classes));
    }
    let assoc = s
        .findings
        .iter()
        .filter(|f| f.sop_classes.is_empty())
        .count();
    if assoc > 0 {
        extra.push(format!(
            "{assoc} association issue{}",
            if assoc == 1 { "" } else { "s" }
        ));
    }
    let _ = write!(
        o,
        "<td class=\"cell {class}\" title=\"{title}\"><a href=\"#{}\"><strong>{}</strong><br>{}/{}{}</a></td>",
        anchor(k),
        s.outcome.as_str().to_uppercase(),
        s.negotiated,
        s.proposed,
        if extra.is_empty() {
            String::new()
        } else {
            format!("<br><small>{}</small>", extra.join(", "))
        }
    );
}

fn issue_li(o: &mut String, x: &Issue) {
    let _ = writeln!(
        o,
        "<li class=\"{}\">{}: {}: {}</li>",
        severity_class(x.severity),
        x.severity.as_str(),
        x.topic,
        esc(&x.message)
    );
}

fn finding_li(o: &mut String, f: &Finding) {
    let class = match f.level {
        super::summary::FindingLevel::Fail => "fail-item",
        super::summary::FindingLevel::Degrade => "degrade-item",
    };
    if f.sop_classes.is_empty() {
        let _ = writeln!(o, "<li class=\"{class}\">{}</li>", esc(&finding_line(f)));
    } else {
        let _ = writeln!(
            o,
            "<li class=\"{class}\">{}: {}<br><small>{} ({}): {}</small></li>",
            f.level.as_str(),
            esc(&f.reason),
            f.kind,
            f.sop_classes.len(),
            esc(&f.sop_classes.join(", "))
        );
    }
}

fn pair_section(o: &mut String, s: &PairSummary, p: &PairDiff, k: usize) {
    let _ = writeln!(
        o,
        "<details class=\"pair\" id=\"{}\"><summary><span class=\"{}\">&nbsp;{}&nbsp;</span> {} &rarr; {}: {} of {} SOP classes negotiate, {} with compression</summary>",
        anchor(k),
        outcome_class(s.outcome),
        s.outcome.as_str().to_uppercase(),
        esc(&s.initiator.long_label()),
        esc(&s.acceptor.long_label()),
        s.negotiated,
        s.proposed,
        s.with_compression
    );
    let pdu = |v: u32| {
        if v == 0 {
            "no limit stated".to_owned()
        } else {
            format!("{v} bytes")
        }
    };
    let _ = writeln!(
        o,
        "<p>Verdict: <span class=\"{}\">{}</span>. Max PDU: {} to {}, {} to {}.</p>",
        verdict_class(p.verdict),
        p.verdict.as_str(),
        pdu(p.pdu_to_acceptor),
        esc(&p.acceptor.ae),
        pdu(p.pdu_to_initiator),
        esc(&p.initiator.ae)
    );
    if !s.findings.is_empty() {
        o.push_str("<p>What fails or degrades:</p>\n<ul>\n");
        for f in &s.findings {
            finding_li(o, f);
        }
        o.push_str("</ul>\n");
    }
    if !p.association.is_empty() {
        o.push_str("<p>Association-level differences:</p>\n<ul>\n");
        for x in &p.association {
            issue_li(o, x);
        }
        o.push_str("</ul>\n");
    }
    o.push_str("<table><tr><th>SOP class</th><th>roles</th><th>prediction</th><th>common transfer syntaxes</th><th>differences</th></tr>\n");
    for c in &p.contexts {
        let (class, pred) = match (&c.transfer_syntax, &c.rejection) {
            (Some(ts), _) => ("acc", format!("accepted: <code>{}</code>", esc(ts.label()))),
            (None, why) => (
                "rej",
                format!("rejected: {}", esc(why.as_deref().unwrap_or(""))),
            ),
        };
        let notes: Vec<String> = c
            .issues
            .iter()
            .map(|x| {
                format!(
                    "<span class=\"{}\">{}: {}: {}</span>",
                    severity_class(x.severity),
                    x.severity.as_str(),
                    x.topic,
                    esc(&x.message)
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}&rarr;{}</td><td class=\"{class}\">{pred}</td><td>{}</td><td>{}</td></tr>",
            esc(c.sop_class.label()),
            c.initiator_role,
            c.initiator_role.peer(),
            esc(&labels(&c.common_transfer_syntaxes)),
            notes.join("<br>")
        );
    }
    o.push_str("</table>\n</details>\n");
}
