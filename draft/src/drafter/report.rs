//! The review report of a draft: per section what was drafted, every name that matched no
//! registry entry, every inconsistency, every table that could not be read, what was
//! assumed, and what a statement should have that the document does not say. As text
//! (for a terminal: wire- and document-derived text has its control characters escaped)
//! and as a self-contained HTML page.

use std::fmt::Write as _;

use dicomtap_analyzer::report::html::escape;
use serde::Serialize;

use crate::document::{Format, Loc};

/// One remark, with where in the document it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub at: Loc,
    pub text: String,
}

/// What was drafted from one section.
#[derive(Debug, Clone, Serialize)]
pub struct SectionSummary {
    pub title: String,
    pub at: Loc,
    /// Claims read there (capability rows, transfer syntaxes).
    pub claims: usize,
}

/// The report of one draft.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub format: Format,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    pub device: String,
    /// AE titles with their capability counts (SCU, SCP).
    pub aes: Vec<(String, usize, usize)>,
    pub private_uids: usize,
    pub sections: Vec<SectionSummary>,
    pub unmatched: Vec<Note>,
    pub inconsistencies: Vec<Note>,
    pub close_matches: Vec<Note>,
    pub unreadable: Vec<Note>,
    pub assumptions: Vec<Note>,
    pub missing: Vec<String>,
}

impl Report {
    pub(crate) fn new(source: &str, format: Format, pages: Option<u32>) -> Report {
        Report {
            source: source.to_owned(),
            format,
            pages,
            device: String::new(),
            aes: Vec::new(),
            private_uids: 0,
            sections: Vec::new(),
            unmatched: Vec::new(),
            inconsistencies: Vec::new(),
            close_matches: Vec::new(),
            unreadable: Vec::new(),
            assumptions: Vec::new(),
            missing: Vec::new(),
        }
    }

    /// Lines for the header comment of the drafted file.
    pub fn header_lines(&self) -> Vec<String> {
        let mut h = vec![
            format!(
                "Drafted by dicomtap {} from {} ({}{}).",
                env!("CARGO_PKG_VERSION"),
                self.source,
                self.format.as_str(),
                self.pages
                    .map(|p| format!(", {p} pages"))
                    .unwrap_or_default()
            ),
            "A draft: review every claim against the document before use. [x.evidence] says".into(),
            "where each claim was read; `dicomtap statement import --report` lists what to check."
                .into(),
        ];
        let issues = self.unmatched.len() + self.inconsistencies.len() + self.unreadable.len();
        if issues > 0 {
            h.push(format!(
                "{} name(s) matched no registry entry, {} inconsistenc{}, {} part(s) not read.",
                self.unmatched.len(),
                self.inconsistencies.len(),
                if self.inconsistencies.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                self.unreadable.len()
            ));
        }
        if !self.missing.is_empty() {
            h.push(String::new());
            h.push("Not stated in the document:".into());
            for m in &self.missing {
                h.push(format!("- {}", terminal_safe(m)));
            }
        }
        h
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let caps: usize = self.aes.iter().map(|(_, u, p)| u + p).sum();
        let _ = writeln!(
            o,
            "{}: {}{}: device {}, {} AE(s), {} capabilities, {} private UID(s)",
            terminal_safe(&self.source),
            self.format.as_str(),
            self.pages
                .map(|p| format!(", {p} pages"))
                .unwrap_or_default(),
            terminal_safe(&self.device),
            self.aes.len(),
            caps,
            self.private_uids
        );
        for (t, u, p) in &self.aes {
            let _ = writeln!(
                o,
                "  AE {}: {u} SCU, {p} SCP capabilities",
                terminal_safe(t)
            );
        }
        let drafted: Vec<&SectionSummary> = self.sections.iter().filter(|s| s.claims > 0).collect();
        if !drafted.is_empty() {
            let _ = writeln!(o, "\nDrafted, by section:");
            for s in drafted {
                let _ = writeln!(
                    o,
                    "  {:>5}  {} ({})",
                    s.claims,
                    terminal_safe(&s.title),
                    s.at
                );
            }
        }
        for (title, notes) in [
            ("Inconsistencies in the document", &self.inconsistencies),
            ("Names that matched no registry entry", &self.unmatched),
            ("Matched by a close spelling (check)", &self.close_matches),
            ("Not read", &self.unreadable),
            ("Assumed", &self.assumptions),
        ] {
            if notes.is_empty() {
                continue;
            }
            let _ = writeln!(o, "\n{title}: {}", notes.len());
            for n in notes {
                let _ = writeln!(o, "  {}: {}", n.at, terminal_safe(&n.text));
            }
        }
        if !self.missing.is_empty() {
            let _ = writeln!(o, "\nNot stated in the document: {}", self.missing.len());
            for m in &self.missing {
                let _ = writeln!(o, "  {}", terminal_safe(m));
            }
        }
        o
    }

    /// The report as a section of an HTML page (see [`html_page`]).
    pub fn to_html_section(&self) -> String {
        let mut o = String::new();
        let caps: usize = self.aes.iter().map(|(_, u, p)| u + p).sum();
        let _ = writeln!(
            o,
            "<section><h2>{}</h2><p>{}{}: device <b>{}</b>, {} AE(s), {} capabilities, {} private UID(s)</p>",
            escape(&self.source),
            self.format.as_str(),
            self.pages
                .map(|p| format!(", {p} pages"))
                .unwrap_or_default(),
            escape(&self.device),
            self.aes.len(),
            caps,
            self.private_uids
        );
        o.push_str("<table><tr><th>AE</th><th>SCU</th><th>SCP</th></tr>");
        for (t, u, p) in &self.aes {
            let _ = write!(o, "<tr><td>{}</td><td>{u}</td><td>{p}</td></tr>", escape(t));
        }
        o.push_str("</table>");
        o.push_str("<h3>Drafted, by section</h3><table><tr><th>claims</th><th>section</th><th>where</th></tr>");
        for s in self.sections.iter().filter(|s| s.claims > 0) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.claims,
                escape(&s.title),
                escape(&s.at.to_string())
            );
        }
        o.push_str("</table>");
        for (class, title, notes) in [
            (
                "bad",
                "Inconsistencies in the document",
                &self.inconsistencies,
            ),
            (
                "bad",
                "Names that matched no registry entry",
                &self.unmatched,
            ),
            (
                "warn",
                "Matched by a close spelling (check)",
                &self.close_matches,
            ),
            ("bad", "Not read", &self.unreadable),
            ("warn", "Assumed", &self.assumptions),
        ] {
            let _ = write!(o, "<h3 class=\"{class}\">{title}: {}</h3>", notes.len());
            if notes.is_empty() {
                continue;
            }
            o.push_str("<ul>");
            for n in notes {
                let _ = write!(
                    o,
                    "<li><span class=\"at\">{}</span> {}</li>",
                    escape(&n.at.to_string()),
                    escape(&n.text)
                );
            }
            o.push_str("</ul>");
        }
        let _ = write!(
            o,
            "<h3 class=\"warn\">Not stated in the document: {}</h3>",
            self.missing.len()
        );
        if !self.missing.is_empty() {
            o.push_str("<ul>");
            for m in &self.missing {
                let _ = write!(o, "<li>{}</li>", escape(m));
            }
            o.push_str("</ul>");
        }
        o.push_str("</section>\n");
        o
    }
}

/// A self-contained HTML page of several reports.
pub fn html_page(reports: &[Report]) -> String {
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dicomtap: drafted statements</title><style>\
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}h3.bad{color:#a00}h3.warn{color:#a60}\
.at{color:#555;font-family:monospace;margin-right:.5em}section{border-top:2px solid #333;margin-top:2em}\
</style></head><body><h1>Drafted statements</h1>\n",
    );
    for r in reports {
        o.push_str(&r.to_html_section());
    }
    o.push_str("</body></html>\n");
    o
}

/// Text for a terminal: control characters (escape sequences, bells) shown as `\u{..}`.
pub fn terminal_safe(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_html_escape_what_the_document_says() {
        let mut r = Report::new("a.pdf", Format::Pdf, Some(3));
        r.device = "X\u{1b}[31m".into();
        r.unmatched.push(Note {
            at: Loc {
                page: Some(2),
                line: 7,
                ..Loc::default()
            },
            text: "SOP class \"<b>Coffee</b>\" matches no registry entry".into(),
        });
        let t = r.to_text();
        assert!(!t.contains('\u{1b}'), "{t}");
        assert!(t.contains("page 2, line 7: SOP class"), "{t}");
        let h = html_page(&[r]);
        assert!(h.contains("&lt;b&gt;Coffee"), "{h}");
        assert!(!h.contains("<b>Coffee"), "{h}");
    }
}
