//! Orthanc's published conformance statement (fixtures/orthanc) laid out as a PS3.2
//! conformance statement in HTML: numbered section headings, an SOP class table, one
//! presentation context table per service (Abstract Syntax Name | UID | Transfer Syntax
//! Name List | Role | Extended Negotiation, several transfer syntaxes per row), a
//! transfer syntax table, captions "Table 4.2-N ...", a `<thead>` that Chromium repeats
//! on every page, and Orthanc's own prose as running text.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One `Name | UID` entry of Orthanc's statement.
#[derive(Debug, Clone)]
pub struct Entry {
    /// As Orthanc writes it ("CTImageStorage").
    pub keyword: String,
    /// As a PS3.2 table prints it ("CT Image Storage").
    pub name: String,
    pub uid: String,
}

/// One section of Orthanc's statement ("Store SCP Conformance").
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    /// The running text, one string per source line.
    pub text: Vec<String>,
    pub entries: Vec<Entry>,
}

/// Orthanc's statement as published.
#[derive(Debug, Clone)]
pub struct Orthanc {
    pub title: String,
    pub sections: Vec<Section>,
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// "CTImageStorage" -> "CT Image Storage", "RETIRED_VLImageStorage" -> "RETIRED VL
/// Image Storage".
pub fn spaced(keyword: &str) -> String {
    let chars: Vec<char> = keyword.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' && out.ends_with(|p: char| p.is_ascii_uppercase()) && out.len() > 3 {
            out.push(' ');
            continue;
        }
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_lower) {
                out.push(' ');
            }
        }
        out.push(c);
    }
    out
}

impl Orthanc {
    /// Parses `fixtures/orthanc/DicomConformanceStatement-<revision>.txt`.
    pub fn load(revision: &str) -> Orthanc {
        let path = fixtures_dir().join(format!("orthanc/DicomConformanceStatement-{revision}.txt"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Orthanc::parse(&text)
    }

    pub fn parse(text: &str) -> Orthanc {
        let lines: Vec<&str> = text.lines().collect();
        let is_rule = |l: &str| l.len() > 3 && l.chars().all(|c| c == '-' || c == '=');
        let mut title = String::new();
        let mut sections: Vec<Section> = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if is_rule(line) && i + 2 < lines.len() && is_rule(lines[i + 2]) {
                let heading = lines[i + 1].trim().to_string();
                if line.starts_with('=') {
                    title = heading;
                } else {
                    sections.push(Section {
                        title: heading,
                        text: Vec::new(),
                        entries: Vec::new(),
                    });
                }
                i += 3;
                continue;
            }
            if let Some(section) = sections.last_mut() {
                if let Some((k, u)) = line.split_once('|') {
                    let keyword = k.trim().to_string();
                    section.entries.push(Entry {
                        name: spaced(&keyword),
                        keyword,
                        uid: u.trim().to_string(),
                    });
                } else if !line.trim().is_empty() {
                    section.text.push(line.trim().to_string());
                }
            }
            i += 1;
        }
        Orthanc { title, sections }
    }

    pub fn section(&self, title: &str) -> &Section {
        self.sections
            .iter()
            .find(|s| s.title == title)
            .unwrap_or_else(|| panic!("Orthanc's statement has no section {title}"))
    }

    pub fn transfer_syntaxes(&self) -> &[Entry] {
        &self.section("Transfer Syntaxes").entries
    }

    /// The SCP services with SOP classes ("Store SCP Conformance", ...).
    pub fn services(&self) -> Vec<&Section> {
        self.sections
            .iter()
            .filter(|s| !s.entries.is_empty() && s.title != "Transfer Syntaxes")
            .collect()
    }
}

/// What the PS3.2 document holds.
#[derive(Debug, Clone)]
pub struct Layout {
    /// How many application entities repeat the presentation context tables (1 for
    /// Orthanc's own statement; more make a long document).
    pub aes: usize,
    /// Compressed transfer syntaxes added to the uncompressed ones of each storage row
    /// (rotating through Orthanc's list): each row gets between `min` and `max`.
    pub min_compressed: usize,
    pub max_compressed: usize,
    /// CSS `break-inside` of table rows: `true` keeps a row on one page.
    pub rows_unbroken: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            aes: 1,
            min_compressed: 1,
            max_compressed: 5,
            rows_unbroken: false,
        }
    }
}

/// One presentation context row as printed.
#[derive(Debug, Clone)]
pub struct ContextRow {
    pub abstract_syntax: String,
    pub uid: String,
    pub transfer_syntaxes: Vec<String>,
    pub role: String,
}

/// A table as printed.
#[derive(Debug, Clone)]
pub struct PrintedTable {
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<ContextRow>,
}

/// The PS3.2 document: its HTML and what its tables hold, to check a reading against.
#[derive(Debug, Clone)]
pub struct Statement {
    pub title: String,
    pub html: String,
    pub context_tables: Vec<PrintedTable>,
    /// Section headings as printed, in order.
    pub headings: Vec<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const UNCOMPRESSED: [&str; 3] = [
    "LittleEndianImplicitTransferSyntax",
    "LittleEndianExplicitTransferSyntax",
    "BigEndianExplicitTransferSyntax",
];

/// The transfer syntaxes a row of `service` offers, for the row at `index`.
fn row_syntaxes(orthanc: &Orthanc, service: &str, index: usize, layout: &Layout) -> Vec<String> {
    let all = orthanc.transfer_syntaxes();
    let mut names: Vec<String> = UNCOMPRESSED
        .iter()
        .filter_map(|k| all.iter().find(|e| e.keyword == *k))
        .map(|e| e.name.clone())
        .collect();
    if service.starts_with("Store") {
        let compressed: Vec<&Entry> = all
            .iter()
            .filter(|e| !UNCOMPRESSED.contains(&e.keyword.as_str()))
            .collect();
        let span = layout.max_compressed.saturating_sub(layout.min_compressed) + 1;
        let count = layout.min_compressed + index % span;
        for k in 0..count {
            let e = compressed[(index * 3 + k) % compressed.len()];
            names.push(e.name.clone());
        }
    }
    names
}

/// Lays Orthanc's statement out as a PS3.2 document.
pub fn build(orthanc: &Orthanc, layout: &Layout) -> Statement {
    let mut html = String::new();
    let mut headings = Vec::new();
    let mut context_tables = Vec::new();
    let title = orthanc.title.clone();
    let break_rows = if layout.rows_unbroken {
        "avoid"
    } else {
        "auto"
    };
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Serif', serif; font-size: 10pt; margin: 0; }}\n\
         h1 {{ font-size: 20pt; }} h2 {{ font-size: 15pt; }} h3 {{ font-size: 13pt; }}\n\
         h4 {{ font-size: 11.5pt; }} h5 {{ font-size: 10.5pt; }}\n\
         table {{ border-collapse: collapse; width: 100%; margin: 4pt 0; }}\n\
         th, td {{ border: 0.75pt solid #000; padding: 3pt 4pt; vertical-align: top; \
         text-align: left; font-size: 9pt; }}\n\
         th {{ background: #ddd; }}\n\
         tr {{ break-inside: {break_rows}; }}\n\
         caption {{ caption-side: top; font-weight: bold; text-align: left; padding: 3pt 0; }}\n\
         </style></head><body>\n",
        t = esc(&title)
    );
    let mut heading = |html: &mut String, level: usize, text: String| {
        let _ = writeln!(html, "<h{level}>{}</h{level}>", esc(&text));
        headings.push(text);
    };
    let _ = writeln!(html, "<h1>{}</h1>", esc(&title));
    heading(&mut html, 2, "1 Introduction".into());
    let _ = writeln!(
        html,
        "<p>This document is Orthanc's DICOM Conformance Statement laid out in the \
         structure of DICOM PS3.2. Its content is the statement Orthanc publishes.</p>"
    );
    heading(&mut html, 2, "2 Networking".into());
    heading(&mut html, 3, "2.1 Implementation Model".into());
    let _ = writeln!(
        html,
        "<p>Orthanc is a DICOM server that stores, queries and retrieves DICOM objects \
         for other application entities.</p>"
    );
    heading(&mut html, 3, "2.2 AE Specifications".into());
    let services = orthanc.services();
    let mut table_no = 0;
    for ae in 1..=layout.aes {
        let ae_name = if layout.aes == 1 {
            "ORTHANC".to_string()
        } else {
            format!("ORTHANC{ae}")
        };
        heading(&mut html, 4, format!("2.2.{ae} {ae_name} AE Specification"));
        heading(&mut html, 5, format!("2.2.{ae}.1 SOP Classes"));
        let _ = writeln!(
            html,
            "<p>{ae_name} provides Standard Conformance to the services below.</p>"
        );
        for (s, service) in services.iter().enumerate() {
            let service_name = service.title.trim_end_matches(" Conformance");
            heading(
                &mut html,
                5,
                format!(
                    "2.2.{ae}.{} Presentation Contexts for {service_name}",
                    s + 2
                ),
            );
            for line in &service.text {
                let _ = writeln!(html, "<p>{}</p>", esc(line));
            }
            table_no += 1;
            let caption = format!("Table 2.2-{table_no} Presentation Contexts for {service_name}");
            let header: Vec<String> = [
                "Abstract Syntax Name",
                "Abstract Syntax UID",
                "Transfer Syntax Name List",
                "Role",
                "Extended Negotiation",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let role = if service_name.contains("SCU") {
                "SCU"
            } else {
                "SCP"
            };
            let _ = writeln!(html, "<table>\n<caption>{}</caption>", esc(&caption));
            let _ = writeln!(
                html,
                "<colgroup><col style=\"width:30%\"><col style=\"width:25%\">\
                 <col style=\"width:27%\"><col style=\"width:7%\"><col style=\"width:11%\"></colgroup>"
            );
            html.push_str("<thead><tr>");
            for h in &header {
                let _ = write!(html, "<th>{}</th>", esc(h));
            }
            html.push_str("</tr></thead>\n<tbody>\n");
            let mut rows = Vec::new();
            for (i, e) in service.entries.iter().enumerate() {
                let syntaxes = row_syntaxes(orthanc, &service.title, i + ae, layout);
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{role}</td><td>None</td></tr>",
                    esc(&e.name),
                    esc(&e.uid),
                    syntaxes
                        .iter()
                        .map(|t| esc(t))
                        .collect::<Vec<_>>()
                        .join("<br>")
                );
                rows.push(ContextRow {
                    abstract_syntax: e.name.clone(),
                    uid: e.uid.clone(),
                    transfer_syntaxes: syntaxes,
                    role: role.to_string(),
                });
            }
            html.push_str("</tbody></table>\n");
            context_tables.push(PrintedTable {
                caption,
                header,
                rows,
            });
        }
    }
    heading(&mut html, 3, "2.3 Transfer Syntaxes".into());
    let ts = orthanc.section("Transfer Syntaxes");
    let (before, after) = ts.text.split_at(ts.text.len().min(3));
    let _ = writeln!(html, "<p>{}</p>", esc(&before.join(" ")));
    let _ = writeln!(
        html,
        "<table><caption>Table 2.3-1 Supported Transfer Syntaxes</caption>\
         <thead><tr><th>Transfer Syntax Name</th><th>UID</th></tr></thead><tbody>"
    );
    for e in &ts.entries {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&e.name),
            esc(&e.uid)
        );
    }
    html.push_str("</tbody></table>\n");
    for line in after {
        let _ = writeln!(html, "<p>{}</p>", esc(line));
    }
    if let Some(notes) = orthanc
        .sections
        .iter()
        .find(|s| s.title == "Implementation notes")
    {
        heading(&mut html, 2, "3 Implementation Notes".into());
        for line in &notes.text {
            let _ = writeln!(html, "<p>{}</p>", esc(line));
        }
    }
    html.push_str("</body></html>\n");
    Statement {
        title,
        html,
        context_tables,
        headings,
    }
}

/// A page that is only a picture: a canvas with drawn text, printed as an image.
pub fn image_only_html() -> String {
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{margin:0}</style></head>\
     <body><canvas id=\"c\" width=\"700\" height=\"900\"></canvas><script>\
     const c=document.getElementById('c').getContext('2d');\
     c.fillStyle='#fff';c.fillRect(0,0,700,900);c.fillStyle='#000';\
     c.font='28px serif';c.fillText('DICOM Conformance Statement (scanned)',40,80);\
     for(let i=0;i<30;i++){c.fillText('1.2.840.10008.5.1.4.1.1.'+i+'  Storage',40,140+i*24);}\
     </script></body></html>"
        .to_string()
}
