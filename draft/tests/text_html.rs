//! The text, Markdown, reStructuredText and HTML readers on real conformance statement
//! documents (tests/fixtures, see its README), checked against what a plain scan of the
//! same files finds.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use dicomtap_draft::read::ReadError;
use dicomtap_draft::{Block, Document, Format, Table, read_bytes, read_file};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn read(rel: &str) -> (Document, Vec<String>) {
    let p = fixture(rel);
    let doc = read_file(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (doc, text.lines().map(str::to_string).collect())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tables_in<'a>(doc: &'a Document, section: &str) -> Vec<&'a Table> {
    doc.tables()
        .filter(|t| t.at.section.as_deref() == Some(section))
        .collect()
}

/// Every heading and line sits at the line of the file it says: the file's line holds
/// the block's text (exactly for plain text; its last word where markup was removed).
fn assert_lines_match(doc: &Document, file: &[String], exact: bool) {
    let mut checked = 0;
    for b in &doc.blocks {
        let (text, at) = match b {
            Block::Heading { text, at, .. } | Block::Line { text, at } => (text, at),
            Block::Table(t) => {
                for r in &t.rows {
                    let src = &file[r.at.line as usize - 1];
                    let first = r
                        .cells
                        .iter()
                        .find(|c| !c.is_empty())
                        .map(|c| c.lines().next().unwrap_or(""));
                    if let Some(first) = first {
                        let word = first.split_whitespace().next().unwrap_or("");
                        assert!(
                            src.contains(word),
                            "{}: row at line {} is {:?}, the file has {src:?}",
                            doc.source,
                            r.at.line,
                            r.cells
                        );
                    }
                }
                continue;
            }
        };
        assert!(
            at.line >= 1 && (at.line as usize) <= file.len(),
            "{}: {at:?}",
            doc.source
        );
        let src = collapse(&file[at.line as usize - 1]);
        if exact {
            assert!(
                src.contains(text.as_str()),
                "{}: line {} is {src:?}, block says {text:?}",
                doc.source,
                at.line
            );
        } else {
            // Every word of the block is a word of the line (markup around them gone).
            let words = |s: &str| -> Vec<String> {
                s.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            let in_src = words(&src);
            assert!(
                words(text).iter().all(|w| in_src.contains(w)),
                "{}: line {} is {src:?}, block says {text:?}",
                doc.source,
                at.line
            );
        }
        checked += 1;
    }
    assert!(checked > 10, "{}: only {checked} blocks", doc.source);
}

/// Orthanc's "| 1.2.840..." lines between a section's title and the next title.
fn orthanc_rows(file: &[String], section: &str) -> Vec<(u32, String, String)> {
    let start = file
        .iter()
        .position(|l| l == section)
        .expect("section title");
    let mut out = Vec::new();
    // The section ends at the next over-lined title: a line of dashes followed by text.
    for (i, l) in file.iter().enumerate().skip(start + 2) {
        if l.starts_with("---") && i > start + 2 {
            break;
        }
        if let Some((name, uid)) = l.split_once('|') {
            if uid.trim().starts_with("1.2.840") {
                out.push((
                    i as u32 + 1,
                    name.trim().to_string(),
                    uid.trim().to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn orthanc_store_scp_is_one_table_of_every_uid_line() {
    for rev in ["2021", "2016"] {
        let rel = format!("orthanc/DicomConformanceStatement-{rev}.txt");
        let (doc, file) = read(&rel);
        assert_eq!(doc.format, Format::Text);
        assert_eq!(
            doc.title.as_deref(),
            Some("DICOM Conformance Statement of Orthanc")
        );
        let expected = orthanc_rows(&file, "Store SCP Conformance");
        assert!(expected.len() > 100, "{rel}: {}", expected.len());
        let tables = tables_in(&doc, "Store SCP Conformance");
        assert_eq!(
            tables.len(),
            1,
            "{rel}: one table (the blank lines between the retired and draft groups do not split it)"
        );
        let got: Vec<(u32, String, String)> = tables[0]
            .rows
            .iter()
            .map(|r| {
                assert_eq!(r.cells.len(), 2, "{rel}: {:?}", r.cells);
                (r.at.line, r.cells[0].clone(), r.cells[1].clone())
            })
            .collect();
        assert_eq!(got, expected, "{rel}");
        assert_eq!(
            tables[0].at.table.as_deref(),
            Some(tables[0].rows[0].at.table.as_deref().unwrap_or("?"))
        );

        let ts = tables_in(&doc, "Transfer Syntaxes");
        assert_eq!(ts.len(), 1);
        let expected = orthanc_rows(&file, "Transfer Syntaxes");
        assert_eq!(ts[0].rows.len(), expected.len());
        assert!(
            ts[0]
                .rows
                .iter()
                .any(|r| r.cells == ["JPEGProcess1TransferSyntax", "1.2.840.10008.1.2.4.50"])
        );
        for s in [
            "Echo SCP Conformance",
            "Find SCP Conformance",
            "Move SCU Conformance",
        ] {
            assert_eq!(tables_in(&doc, s).len(), 1, "{rel}: {s}");
        }
        assert!(tables_in(&doc, "Store SCU Conformance").is_empty());
        assert_lines_match(&doc, &file, true);
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    }
}

/// The non-blank lines of the first `\verbatim` block after `after`.
fn verbatim_after(file: &[String], after: &str) -> Vec<(u32, String, String)> {
    let start = file
        .iter()
        .position(|l| l.starts_with(after))
        .expect("marker");
    let open = start
        + file[start..]
            .iter()
            .position(|l| l == "\\verbatim")
            .expect("verbatim");
    let mut out = Vec::new();
    for (i, l) in file.iter().enumerate().skip(open + 1) {
        if l == "\\endverbatim" {
            break;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        if let (Some(first), Some(last)) = (words.first(), words.last()) {
            out.push((i as u32 + 1, first.to_string(), last.to_string()));
        }
    }
    out
}

#[test]
fn dcmtk_man_page_conformance_lists_are_tables_under_their_sections() {
    let (doc, file) = read("dcmtk/dcmqrscp.man");
    assert_eq!(doc.format, Format::Text);
    assert_eq!(
        doc.title.as_deref(),
        Some("DICOM image archive (central test node)")
    );
    for (marker, section) in [
        (
            "\\subsubsection dcmqrscp_scu_conformance",
            "SCU Conformance",
        ),
        (
            "\\subsubsection dcmqrscp_scp_conformance",
            "SCP Conformance",
        ),
    ] {
        let expected = verbatim_after(&file, marker);
        assert!(expected.len() > 100, "{section}: {}", expected.len());
        let tables = tables_in(&doc, section);
        assert_eq!(
            tables.len(),
            3,
            "{section}: SOP classes, default and optional transfer syntaxes"
        );
        let got: Vec<(u32, String, String)> = tables[0]
            .rows
            .iter()
            .map(|r| (r.at.line, r.cells[0].clone(), r.cells[1].clone()))
            .collect();
        assert_eq!(got, expected, "{section}");
        assert!(
            tables[1]
                .rows
                .iter()
                .all(|r| r.cells[1].starts_with("1.2.840.10008.1.2"))
        );
    }
    // The heading levels follow \section, \subsection, \subsubsection.
    let levels: Vec<(u8, &str)> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { level, text, .. } => Some((*level, text.as_str())),
            _ => None,
        })
        .collect();
    for want in [
        (2, "NOTES"),
        (3, "DICOM Conformance"),
        (4, "SCU Conformance"),
        (4, "Query Keys"),
    ] {
        assert!(levels.contains(&want), "{want:?} in {levels:?}");
    }
    // Doxygen markup is gone from running text.
    let lines: Vec<&str> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Line { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        lines.contains(&"The dcmqrscp application supports the following SOP Classes as an SCU:")
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\\b ") || l.contains("\\e ") || l.contains("<b>")),
        "{lines:?}"
    );
    // The duplicated \page title in the \else branch is skipped.
    assert!(!lines.iter().any(|l| l.contains("\\page")));
    assert_lines_match(&doc, &file, false);

    // Every man page's conformance section has its SOP classes as a table.
    for tool in [
        "echoscu", "findscu", "getscu", "movescu", "storescp", "storescu",
    ] {
        let (doc, file) = read(&format!("dcmtk/{tool}.man"));
        let conf: Vec<&Table> = doc
            .tables()
            .filter(|t| {
                t.at.section
                    .as_deref()
                    .is_some_and(|s| s.contains("Conformance"))
            })
            .collect();
        assert!(!conf.is_empty(), "{tool}");
        let marker =
            format!("The \\b {tool} application supports the following SOP Classes as an SCU");
        if file.iter().any(|l| l.starts_with(&marker)) {
            let expected = verbatim_after(&file, &marker);
            let got: Vec<(u32, String, String)> = conf[0]
                .rows
                .iter()
                .map(|r| (r.at.line, r.cells[0].clone(), r.cells[1].clone()))
                .collect();
            assert_eq!(got, expected, "{tool}");
        }
        for t in &conf {
            for r in &t.rows {
                assert!(
                    r.cells.last().is_some_and(|u| u.starts_with("1.2.")),
                    "{tool}: {:?}",
                    r.cells
                );
            }
        }
        assert_lines_match(&doc, &file, false);
    }
}

/// A grid table's rows as a plain scan sees them: `| 1.2... | name |` starts a row,
/// `|        | more |` continues its name on a new line.
fn grid_rows_after(file: &[String], from: usize) -> Vec<(u32, String, String)> {
    let mut out: Vec<(u32, String, String)> = Vec::new();
    // The body starts under the header's `+===` rule.
    let top = from
        + file[from..]
            .iter()
            .position(|l| l.starts_with("+==="))
            .expect("grid");
    for (i, l) in file.iter().enumerate().skip(top + 1) {
        if !(l.starts_with('|') || l.starts_with('+')) {
            break;
        }
        if !l.starts_with('|') {
            continue;
        }
        let parts: Vec<&str> = l.split('|').collect();
        let (uid, name) = (parts[1].trim(), parts[2].trim());
        if !uid.is_empty() {
            out.push((i as u32 + 1, uid.to_string(), name.to_string()));
        } else if let Some(last) = out.last_mut() {
            last.2.push('\n');
            last.2.push_str(name);
        }
    }
    out
}

#[test]
fn pynetdicom_grid_tables_join_wrapped_names_with_newlines() {
    let (doc, file) = read("pynetdicom/storescp.rst");
    assert_eq!(doc.format, Format::Rst);
    assert_eq!(doc.title.as_deref(), Some("storescp"));
    let storage = file
        .iter()
        .position(|l| l == "Storage Service")
        .expect("section");
    let expected = grid_rows_after(&file, storage);
    assert!(expected.len() > 100);
    let sop: Vec<&Table> = tables_in(&doc, "SOP Classes");
    assert_eq!(sop.len(), 2, "Verification and Storage");
    let t = sop[1];
    assert_eq!(t.header, ["UID", "SOP Class"]);
    let got: Vec<(u32, String, String)> = t
        .rows
        .iter()
        .map(|r| (r.at.line, r.cells[0].clone(), r.cells[1].clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(t.rows.iter().any(|r| r.cells
        == [
            "1.2.840.10008.5.1.4.1.1.1.1",
            "Digital X-Ray Image Storage\n- For Presentation"
        ]));
    // Headings: the over- and underlined title, then = - . in order of appearance.
    let heads: Vec<(u8, &str, u32)> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { level, text, at } => Some((*level, text.as_str(), at.line)),
            _ => None,
        })
        .collect();
    assert_eq!(heads[0], (1, "storescp", 2));
    assert!(heads.contains(&(2, "DICOM Conformance", 121)), "{heads:?}");
    assert!(heads.contains(&(3, "Storage Service", 155)), "{heads:?}");
    assert!(heads.contains(&(4, "SOP Classes", 158)), "{heads:?}");
    // The debug log in the code block is not read as headings.
    assert!(!heads.iter().any(|h| h.1.contains("A-ASSOCIATE")));
    assert_lines_match(&doc, &file, false);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);

    for app in [
        "echoscp", "findscu", "getscu", "movescu", "qrscp", "storescu",
    ] {
        let (doc, file) = read(&format!("pynetdicom/{app}.rst"));
        assert!(doc.problems.is_empty(), "{app}: {:?}", doc.problems);
        let grids = file.iter().filter(|l| l.starts_with("+===")).count();
        assert_eq!(
            doc.tables().filter(|t| !t.header.is_empty()).count(),
            grids,
            "{app}"
        );
        assert_lines_match(&doc, &file, false);
    }
}

/// The transfer syntaxes and first SOP classes of pynetdicom's storescp.rst, rendered
/// as a PS3.2-style HTML table: one row per SOP class and transfer syntax, the SOP
/// class's name and UID cells spanning its transfer syntax rows, wrapped names broken
/// with `<br>`. Returns the page and the expected (line, cells) rows.
fn storescp_as_html() -> (String, Vec<(u32, Vec<String>)>) {
    let (_, file) = read("pynetdicom/storescp.rst");
    let storage = file
        .iter()
        .position(|l| l == "Storage Service")
        .expect("section");
    let sops = grid_rows_after(&file, storage);
    let ts_at = storage
        + file[storage..]
            .iter()
            .position(|l| l == "Transfer Syntaxes")
            .expect("ts");
    let ts = grid_rows_after(&file, ts_at);
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>SAMPLE Storage SCP Conformance</title>\n\
         <style>td { color: red }</style><script>document.write('<h1>no</h1>')</script></head>\n\
         <body><nav><a href=\"/\">Home</a></nav>\n<h1>1 Conformance Statement Overview</h1>\n\
         <h3>4.2.1.3.1 Storage SCP</h3>\n<p>Table 4.2-3 Storage SOP Classes and Transfer Syntaxes</p>\n\
         <table border=\"1\">\n<thead><tr><th>SOP Class Name</th><th>SOP Class UID</th><th>Transfer Syntax</th><th>UID</th></tr></thead>\n<tbody>\n",
    );
    let mut expected = Vec::new();
    let mut line = html.lines().count() as u32;
    for (_, uid, name) in sops.iter().take(6) {
        for (k, (_, ts_uid, ts_name)) in ts.iter().enumerate() {
            line += 1;
            if k == 0 {
                html.push_str(&format!(
                    "<tr><td rowspan=\"{}\">{}</td><td rowspan=\"{}\">{uid}</td><td>{}</td><td>{ts_uid}</td></tr>\n",
                    ts.len(),
                    name.replace('\n', "<br>"),
                    ts.len(),
                    ts_name.replace('\n', "<br>")
                ));
            } else {
                html.push_str(&format!(
                    "<tr><td>{}</td>\n  <td>{ts_uid}</td></tr>\n",
                    ts_name.replace('\n', "<br>")
                ));
            }
            expected.push((
                line,
                vec![name.clone(), uid.clone(), ts_name.clone(), ts_uid.clone()],
            ));
            if k > 0 {
                line += 1;
            }
        }
    }
    html.push_str(
        "</tbody></table>\n<p>The SCP does not support extended negotiation.</p>\n</body></html>\n",
    );
    (html, expected)
}

#[test]
fn html_rowspans_repeat_the_sop_class_into_every_transfer_syntax_row() {
    let (html, expected) = storescp_as_html();
    let doc = read_bytes(html.as_bytes(), "storescp.html").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.format, Format::Html);
    assert_eq!(doc.title.as_deref(), Some("SAMPLE Storage SCP Conformance"));
    let t = doc.tables().next().expect("a table");
    assert_eq!(
        t.caption.as_deref(),
        Some("Table 4.2-3 Storage SOP Classes and Transfer Syntaxes")
    );
    assert_eq!(
        t.header,
        ["SOP Class Name", "SOP Class UID", "Transfer Syntax", "UID"]
    );
    assert_eq!(t.at.section.as_deref(), Some("4.2.1.3.1 Storage SCP"));
    assert_eq!(t.at.table.as_deref(), t.caption.as_deref());
    let got: Vec<(u32, Vec<String>)> = t
        .rows
        .iter()
        .map(|r| (r.at.line, r.cells.clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(
        t.rows
            .iter()
            .any(|r| r.cells[0] == "Digital X-Ray Image Storage\n- For Presentation")
    );
    // Script, style and navigation are not text; the caption paragraph is not a line.
    let lines: Vec<(&str, u32)> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Line { text, at } => Some((text.as_str(), at.line)),
            _ => None,
        })
        .collect();
    let last_line = html
        .lines()
        .position(|l| l.starts_with("<p>The SCP"))
        .map(|p| p as u32 + 1);
    assert_eq!(
        lines,
        [(
            "The SCP does not support extended negotiation.",
            last_line.unwrap_or(0)
        )]
    );
    let heads: Vec<(u8, &str, u32)> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { level, text, at } => Some((*level, text.as_str(), at.line)),
            _ => None,
        })
        .collect();
    let line_of = |needle: &str| {
        html.lines()
            .position(|l| l.contains(needle))
            .map_or(0, |p| p as u32 + 1)
    };
    assert_eq!(
        heads,
        [
            (1, "1 Conformance Statement Overview", line_of("<h1>1 ")),
            (3, "4.2.1.3.1 Storage SCP", line_of("<h3>4"))
        ]
    );
}

#[test]
fn html_colspans_th_headers_nested_tables_and_charsets() {
    let page = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"></head><body>\n\
<p class=\"Heading2\">4.2 AE Specifications</p>\n\
<table>\n\
<caption>Table 4.2-1 Presentation Contexts</caption>\n\
<tr><th rowspan=2>Abstract Syntax</th><th colspan=2>Transfer Syntax</th><th rowspan=2>Role</th></tr>\n\
<tr><th>Name</th><th>UID</th></tr>\n\
<tr><td>CT Image Storage<p>1.2.840.10008.5.1.4.1.1.2</p></td><td>Implicit VR Little Endian</td><td>1.2.840.10008.1.2</td><td>SCP</td></tr>\n\
<tr><td colspan=3>All other storage SOP classes \x96 see <b>Table\xa04.2-2</b></td><td>SCP<table><tr><td>inner a</td><td>inner \xb5</td></tr></table></td></tr>\n\
</table>\n\
<p><b>4.2.1 Storage SCP</b></p><ul><li>first item</li><li>second<br>item</li></ul>\n\
</body></html>";
    let doc = read_bytes(page, "ae.html").unwrap_or_else(|e| panic!("{e}"));
    let tables: Vec<&Table> = doc.tables().collect();
    assert_eq!(tables.len(), 2);
    let t = tables[0];
    assert_eq!(
        t.caption.as_deref(),
        Some("Table 4.2-1 Presentation Contexts")
    );
    assert_eq!(
        t.header,
        [
            "Abstract Syntax",
            "Transfer Syntax\nName",
            "Transfer Syntax\nUID",
            "Role"
        ]
    );
    assert_eq!(
        t.rows[0].cells,
        [
            "CT Image Storage\n1.2.840.10008.5.1.4.1.1.2",
            "Implicit VR Little Endian",
            "1.2.840.10008.1.2",
            "SCP"
        ]
    );
    // The no-break space is a space in the text.
    let other = "All other storage SOP classes \u{2013} see Table 4.2-2";
    assert_eq!(t.rows[1].cells, [other, other, other, "SCP"]);
    assert_eq!(t.rows[1].at.line, 8);
    assert_eq!(t.at.section.as_deref(), Some("4.2 AE Specifications"));
    assert_eq!(tables[1].rows[0].cells, ["inner a", "inner \u{b5}"]);
    let heads: Vec<(u8, &str)> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { level, text, .. } => Some((*level, text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        heads,
        [(2, "4.2 AE Specifications"), (3, "4.2.1 Storage SCP")]
    );
    let lines: Vec<&str> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Line { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(lines, ["first item", "second", "item"]);
}

#[test]
fn html_pre_blocks_keep_their_column_tables() {
    let (_, file) = read("dcmtk/echoscu.man");
    let marker = "The \\b echoscu application supports the following SOP Classes as an SCU";
    let rows = verbatim_after(&file, marker);
    let mut page = String::from("<html><body>\n<h2>DICOM Conformance</h2>\n<pre>\n");
    for (_, name, uid) in &rows {
        page.push_str(&format!("{name:<36}{uid}\n"));
    }
    page.push_str("</pre></body></html>\n");
    let doc = read_bytes(page.as_bytes(), "echoscu.html").unwrap_or_else(|e| panic!("{e}"));
    let t = doc.tables().next().expect("a table");
    assert_eq!(t.rows.len(), rows.len());
    assert_eq!(t.rows[0].cells, [rows[0].1.clone(), rows[0].2.clone()]);
    assert_eq!(t.at.section.as_deref(), Some("DICOM Conformance"));
}

#[test]
fn bad_input_gives_clear_errors_without_panics() {
    assert!(matches!(read_bytes(b"", "x"), Err(ReadError::Empty)));
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    match read_bytes(&garbage, "x") {
        Err(e @ ReadError::UnknownFormat(_)) => {
            assert!(e.to_string().contains("binary data"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // Latin-1 text (not UTF-8) is read, its characters right.
    let latin =
        b"Modalit\xe4t | 1.2.840.10008.5.1.4.1.1.2\nG\xfcltig   | 1.2.840.10008.5.1.4.1.1.4\n";
    let doc = read_bytes(latin, "x").unwrap_or_else(|e| panic!("{e}"));
    let t = doc.tables().next().expect("a table");
    assert_eq!(t.rows[0].cells[0], "Modalität");
    assert_eq!(t.rows[1].cells[0], "Gültig");
    // Empty HTML body.
    assert!(matches!(
        read_bytes(b"<html><body>  </body></html>", "x"),
        Err(ReadError::Html(_))
    ));
}

#[test]
fn huge_lines_and_tables_are_read_in_linear_time() {
    // A 10,000-column line, in text and as an HTML table row.
    let wide: String = (0..10_000).map(|i| format!("c{i}  ")).collect();
    let doc =
        read_bytes(format!("{wide}\n{wide}\n").as_bytes(), "x").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.tables().count(), 0);
    let cells: String = (0..10_000)
        .map(|i| format!("<td colspan=999>{i}</td>"))
        .collect();
    let doc = read_bytes(format!("<table><tr>{cells}</tr></table>").as_bytes(), "x")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        doc.tables().next().map(|t| t.rows[0].cells.len()),
        Some(1000)
    );
    // 100,000 rows.
    let started = std::time::Instant::now();
    let lap = |what: &str| eprintln!("{what}: {:?}", started.elapsed());
    let mut text = String::from("Storage SCP\n===========\n\n");
    for i in 0..100_000 {
        text.push_str(&format!(
            "  SOPClass{i:<20} | 1.2.840.10008.5.1.4.1.1.{i}\n"
        ));
    }
    let doc = read_bytes(text.as_bytes(), "x").unwrap_or_else(|e| panic!("{e}"));
    let t = doc.tables().next().expect("a table");
    assert_eq!(t.rows.len(), 100_000);
    assert_eq!(t.rows[99_999].at.line, 100_003);
    lap("text table");
    let mut html = String::from("<table><tr><th>SOP</th><th>UID</th></tr>\n");
    for i in 0..20_000 {
        html.push_str(&format!("<tr><td>SOPClass{i}</td><td>1.2.{i}</td></tr>\n"));
    }
    html.push_str("</table>");
    let doc = read_bytes(html.as_bytes(), "x").unwrap_or_else(|e| panic!("{e}"));
    let t = doc.tables().next().expect("a table");
    assert_eq!(t.rows.len(), 20_000);
    assert_eq!(t.rows[19_999].at.line, 20_001);
    lap("html table");
    // Rowspans that push every row's cells one column further: bounded, and said so.
    let mut bomb = String::from("<table>\n");
    for i in 0..3_000 {
        bomb.push_str(&format!("<tr><td rowspan=65534>SOPClass{i}</td></tr>\n"));
    }
    bomb.push_str("</table>");
    let doc = read_bytes(bomb.as_bytes(), "x").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        doc.problems.iter().any(|p| p.contains("the rest is cut")),
        "{:?}",
        doc.problems
    );
    assert!(
        doc.tables()
            .all(|t| t.rows.iter().all(|r| r.cells.len() <= 1000))
    );
    lap("rowspan bomb");
    // Debug builds are slow; this only catches a quadratic blow-up.
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    // Deeply nested markup: read when it is deep as real pages go, refused (not left to
    // the parser's quadratic time) when it is absurd.
    let deep = format!(
        "{}text{}",
        "<div><span>".repeat(500),
        "</span></div>".repeat(500)
    );
    let doc = read_bytes(deep.as_bytes(), "x").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        doc.blocks
            .iter()
            .any(|b| matches!(b, Block::Line { text, .. } if text == "text"))
    );
    let absurd = format!("<html>{}text", "<div>".repeat(100_000));
    match read_bytes(absurd.as_bytes(), "x") {
        Err(e @ ReadError::Html(_)) => assert!(e.to_string().contains("nest"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// Reading time of big generated statements; run with
/// `cargo test --release -p dicomtap-draft --test text_html -- --ignored --nocapture`.
#[test]
#[ignore]
fn reading_speed() {
    let (_, orthanc) = read("orthanc/DicomConformanceStatement-2021.txt");
    let orthanc = orthanc.join("\n") + "\n";
    let (_, rst) = read("pynetdicom/storescp.rst");
    let rst = rst.join("\n") + "\n";
    let (html, _) = storescp_as_html();
    for (what, unit, mb) in [
        ("text", &orthanc, 20),
        ("text", &orthanc, 50),
        ("rst", &rst, 20),
        ("html", &html, 20),
    ] {
        if std::env::var("READ_SPEED_ONLY").is_ok_and(|o| o != what) {
            continue;
        }
        let mut doc = String::with_capacity(mb << 20);
        while doc.len() < mb << 20 {
            doc.push_str(unit);
        }
        let started = std::time::Instant::now();
        let d = read_bytes(doc.as_bytes(), "big").unwrap_or_else(|e| panic!("{e}"));
        let rows: usize = d.tables().map(|t| t.rows.len()).sum();
        eprintln!(
            "{what} {mb} MB: {:?}, {} blocks, {rows} rows",
            started.elapsed(),
            d.blocks.len()
        );
    }
}
