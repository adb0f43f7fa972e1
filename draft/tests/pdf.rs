#![allow(clippy::expect_used, clippy::unwrap_used)]

//! The PDF reader on conformance statements printed by headless Chromium from real
//! content (Orthanc's published statement laid out as PS3.2), checked against what was
//! printed and against poppler's `pdftotext -layout`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use dicomtap_draft::read::pdf;
use dicomtap_draft::{Block, Document, ReadError, Table};
use support::chromium::{self, Print};
use support::statement::{self, Layout, Orthanc, Statement};

struct Rendered {
    statement: Statement,
    pdf: Vec<u8>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn render(statement: Statement, opts: Print, name: &str) -> Option<Rendered> {
    let chromium = chromium::require()?;
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf = chromium::print(&chromium, &statement.html, dir.path(), name, opts)
        .unwrap_or_else(|e| panic!("printing {name}: {e}"));
    let path = dir.path().join(format!("{name}.pdf"));
    Some(Rendered {
        statement,
        pdf,
        path,
        _dir: dir,
    })
}

/// Orthanc's statement printed without Chromium's header and footer (once per run).
fn orthanc_plain() -> Option<&'static Rendered> {
    static R: OnceLock<Option<Rendered>> = OnceLock::new();
    R.get_or_init(|| {
        let doc = statement::build(&Orthanc::load("2021"), &Layout::default());
        render(doc, Print::default(), "orthanc")
    })
    .as_ref()
}

/// The same printed with Chromium's default header (date, title) and footer (file URL,
/// "n/N").
fn orthanc_with_margins() -> Option<&'static Rendered> {
    static R: OnceLock<Option<Rendered>> = OnceLock::new();
    R.get_or_init(|| {
        let doc = statement::build(&Orthanc::load("2016"), &Layout::default());
        let opts = Print {
            header_footer: true,
            ..Print::default()
        };
        render(doc, opts, "orthanc-margins")
    })
    .as_ref()
}

fn read(r: &Rendered) -> Document {
    pdf::read(&r.pdf, &r.path.display().to_string())
        .unwrap_or_else(|e| panic!("reading {}: {e}", r.path.display()))
}

fn flat(cell: &str) -> String {
    cell.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every printed presentation context table is one table of the reading, with its
/// caption, its header once, and every row: the SOP class UID in exactly one row whose
/// transfer syntax cell holds the row's whole list, across page breaks.
fn check_tables(r: &Rendered, doc: &Document) {
    let tables: Vec<&Table> = doc.tables().collect();
    for printed in &r.statement.context_tables {
        let found: Vec<&&Table> = tables
            .iter()
            .filter(|t| t.caption.as_deref() == Some(printed.caption.as_str()))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: {} tables with that caption",
            printed.caption,
            found.len()
        );
        let t = found[0];
        let label = printed
            .caption
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(t.at.table.as_deref(), Some(label.as_str()));
        assert_eq!(t.header, printed.header, "{}: header", printed.caption);
        assert_eq!(
            t.rows.len(),
            printed.rows.len(),
            "{}: row count",
            printed.caption
        );
        for row in &t.rows {
            assert_eq!(
                row.cells.len(),
                5,
                "{}: row {:?}",
                printed.caption,
                row.cells
            );
            let as_header: Vec<String> = row.cells.iter().map(|c| flat(c)).collect();
            assert_ne!(
                as_header, printed.header,
                "{}: a repeated header read as a row",
                printed.caption
            );
            assert_eq!(row.at.table.as_deref(), Some(label.as_str()));
        }
        for p in &printed.rows {
            let rows: Vec<_> = t.rows.iter().filter(|row| row.cells[1] == p.uid).collect();
            assert_eq!(
                rows.len(),
                1,
                "{}: UID {} in {} rows",
                printed.caption,
                p.uid,
                rows.len()
            );
            let row = rows[0];
            assert_eq!(
                flat(&row.cells[0]),
                p.abstract_syntax,
                "{}: name of {}",
                printed.caption,
                p.uid
            );
            assert_eq!(
                flat(&row.cells[2]),
                p.transfer_syntaxes.join(" "),
                "{}: transfer syntaxes of {}",
                printed.caption,
                p.uid
            );
            assert!(
                row.cells[2].lines().count() >= p.transfer_syntaxes.len(),
                "{}: the transfer syntax cell of {} keeps its lines",
                printed.caption,
                p.uid
            );
            assert_eq!(row.cells[3], p.role);
            assert_eq!(row.cells[4], "None");
        }
    }
    // Any UID of the source outside its rows would be a row split in two.
    for t in &tables {
        for row in &t.rows {
            assert!(
                !row.cells
                    .iter()
                    .skip(2)
                    .any(|c| c.contains("1.2.840.10008.5")),
                "a UID outside the UID column: {:?}",
                row.cells
            );
        }
    }
}

#[test]
fn orthanc_presentation_context_tables_survive_page_breaks() {
    let Some(r) = orthanc_plain() else { return };
    let doc = read(r);
    assert_eq!(doc.format, dicomtap_draft::Format::Pdf);
    assert_eq!(doc.title.as_deref(), Some(r.statement.title.as_str()));
    check_tables(r, &doc);
    let store = doc
        .tables()
        .find(|t| {
            t.caption
                .as_deref()
                .is_some_and(|c| c.ends_with("for Store SCP"))
        })
        .expect("store table");
    let first = store.rows.first().and_then(|r| r.at.page).unwrap_or(0);
    let last = store.rows.last().and_then(|r| r.at.page).unwrap_or(0);
    assert!(
        last >= first + 10,
        "the store table spans pages {first}-{last}"
    );
    assert!(doc.pages.unwrap_or(0) >= 20, "{:?} pages", doc.pages);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
}

#[test]
fn numbered_headings_have_their_level_and_sections_follow_them() {
    let Some(r) = orthanc_plain() else { return };
    let doc = read(r);
    let headings: Vec<(u8, &str)> = doc
        .blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading { level, text, .. } => Some((*level, text.as_str())),
            _ => None,
        })
        .collect();
    let numbered: Vec<(u8, &str)> = headings
        .iter()
        .copied()
        .filter(|(_, t)| t.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let expected: Vec<(u8, &str)> = r
        .statement
        .headings
        .iter()
        .map(|h| {
            let num = h.split(' ').next().unwrap_or("");
            (num.split('.').count() as u8, h.as_str())
        })
        .collect();
    assert_eq!(numbered, expected);
    // Every block after a heading names it as its section.
    let mut current: Option<String> = None;
    for b in &doc.blocks {
        if let Block::Heading { text, .. } = b {
            current = Some(text.clone());
        }
        assert_eq!(b.at().section, current, "{b:?}");
    }
    let store = doc
        .tables()
        .find(|t| {
            t.caption
                .as_deref()
                .is_some_and(|c| c.ends_with("for Store SCP"))
        })
        .expect("store table");
    assert_eq!(
        store.at.section.as_deref(),
        Some("2.2.1.3 Presentation Contexts for Store SCP")
    );
}

#[test]
fn chromium_page_headers_and_footers_are_not_read_as_text() {
    let Some(r) = orthanc_with_margins() else {
        return;
    };
    let doc = read(r);
    check_tables(r, &doc);
    let url = format!("file://{}", r.path.with_extension("html").display());
    let pages = doc.pages.unwrap_or(0);
    assert!(pages > 5);
    let page_number = |t: &str| {
        t.split_whitespace().any(|w| {
            w.split_once('/').is_some_and(|(a, b)| {
                a.parse::<u32>().is_ok_and(|a| a >= 1 && a <= pages) && b == pages.to_string()
            })
        })
    };
    let dated = |t: &str| t.contains(" AM") || t.contains(" PM");
    let mut texts: Vec<String> = Vec::new();
    for b in &doc.blocks {
        match b {
            Block::Heading { text, .. } | Block::Line { text, .. } => texts.push(text.clone()),
            Block::Table(t) => {
                texts.extend(t.header.iter().cloned());
                for row in &t.rows {
                    texts.extend(row.cells.iter().cloned());
                }
            }
        }
    }
    for t in &texts {
        assert!(
            !t.contains("file://") && !t.contains(&url),
            "URL read as text: {t:?}"
        );
        assert!(!page_number(t), "page number read as text: {t:?}");
        assert!(!dated(t), "date read as text: {t:?}");
    }
    // The title is printed once as the document's heading, not on every page.
    let titles = texts
        .iter()
        .filter(|t| t.contains(&r.statement.title))
        .count();
    assert_eq!(titles, 1, "the title repeated {titles} times");
}

fn pdftotext_page(path: &Path, page: u32) -> Vec<String> {
    let out = Command::new("pdftotext")
        .args(["-layout", "-f", &page.to_string(), "-l", &page.to_string()])
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by scripts/install-test-peers.sh)");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn page_and_line_point_at_the_printed_line() {
    for r in [orthanc_plain(), orthanc_with_margins()] {
        let Some(r) = r else { return };
        let doc = read(r);
        let mut checked = 0;
        let mut places: Vec<(u32, u32, String)> = Vec::new();
        for b in &doc.blocks {
            match b {
                Block::Heading { text, at, .. } | Block::Line { text, at } => {
                    places.push((at.page.unwrap_or(0), at.line, text.clone()))
                }
                Block::Table(t) => {
                    for row in &t.rows {
                        let first = row.cells[0].lines().next().unwrap_or("").to_string();
                        places.push((row.at.page.unwrap_or(0), row.at.line, first));
                    }
                }
            }
        }
        let mut cache: std::collections::HashMap<u32, Vec<String>> = Default::default();
        for (page, line, text) in places.iter().step_by(3) {
            let lines = cache
                .entry(*page)
                .or_insert_with(|| pdftotext_page(&r.path, *page));
            let printed = lines
                .get(*line as usize - 1)
                .unwrap_or_else(|| panic!("page {page} has no line {line} ({text:?})"));
            assert!(
                printed.starts_with(&flat(text)),
                "page {page} line {line}: read {text:?}, printed {printed:?}"
            );
            checked += 1;
        }
        assert!(checked > 40, "{checked} places checked");
    }
}

fn tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{name} is missing: scripts/install-test-peers.sh installs it"
    );
}

fn qpdf_encrypt(r: &Rendered, user: &str, name: &str) -> Vec<u8> {
    tool("qpdf");
    let out = r.path.with_file_name(format!("{name}.pdf"));
    let status = Command::new("qpdf")
        .args(["--encrypt", user, "owner-secret", "256", "--"])
        .arg(&r.path)
        .arg(&out)
        .status()
        .expect("qpdf");
    assert!(status.success(), "qpdf --encrypt failed");
    std::fs::read(&out).expect("encrypted copy")
}

#[test]
fn an_encrypted_pdf_is_refused_as_encrypted() {
    let Some(r) = orthanc_plain() else { return };
    let bytes = qpdf_encrypt(r, "user-secret", "encrypted");
    match pdf::read(&bytes, "encrypted.pdf") {
        Err(ReadError::Encrypted) => {}
        other => panic!("expected Encrypted, got {other:?}"),
    }
}

#[test]
fn a_pdf_encrypted_without_a_user_password_is_read() {
    let Some(r) = orthanc_plain() else { return };
    let bytes = qpdf_encrypt(r, "", "owner-only");
    let doc = pdf::read(&bytes, "owner-only.pdf").expect("readable without a password");
    check_tables(r, &doc);
}

#[test]
fn image_only_pages_are_refused_naming_the_pages() {
    let Some(chromium) = chromium::require() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = chromium::print(
        &chromium,
        &statement::image_only_html(),
        dir.path(),
        "scan",
        Print::default(),
    )
    .expect("printing the image page");
    match pdf::read(&bytes, "scan.pdf") {
        Err(ReadError::NoText { pages }) => {
            assert_eq!(pages, "1");
            let msg = ReadError::NoText { pages }.to_string();
            assert!(msg.contains("pages 1 ") && msg.contains("OCR"), "{msg}");
        }
        other => panic!("expected NoText, got {:?}", other.map(|d| d.blocks.len())),
    }
}

#[test]
fn truncated_and_garbage_pdfs_are_damaged_not_panics() {
    let Some(r) = orthanc_plain() else { return };
    for keep in [r.pdf.len() / 2, r.pdf.len() - 200, 2000, 9] {
        match pdf::read(&r.pdf[..keep], "truncated.pdf") {
            Err(ReadError::CorruptPdf(why)) => assert!(!why.is_empty()),
            other => panic!(
                "{keep} bytes: expected CorruptPdf, got {:?}",
                other.map(|d| d.blocks.len())
            ),
        }
    }
    // Bytes overwritten in the middle of the content streams: whatever can be read is,
    // and damage is reported, never a panic.
    let mut damaged = r.pdf.clone();
    let mid = damaged.len() / 3;
    for (i, b) in damaged[mid..mid + 4000].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    match pdf::read(&damaged, "damaged.pdf") {
        Ok(doc) => assert!(doc.pages.is_some()),
        Err(ReadError::CorruptPdf(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
    }
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    assert!(matches!(
        pdf::read(&garbage, "garbage.pdf"),
        Err(ReadError::CorruptPdf(_))
    ));
    assert!(matches!(
        pdf::read(b"not a pdf at all", "x.pdf"),
        Err(ReadError::CorruptPdf(_))
    ));
}

/// About 300 pages: Orthanc's storage SOP classes in six application entities, each
/// row with 11-15 transfer syntaxes. Run with `--ignored` in a release build to measure.
#[test]
#[ignore]
fn a_300_page_statement_is_read_quickly() {
    let layout = Layout {
        aes: 6,
        min_compressed: 8,
        max_compressed: 12,
        rows_unbroken: false,
    };
    let doc = statement::build(&Orthanc::load("2021"), &layout);
    let opts = Print {
        timeout: Duration::from_secs(600),
        ..Print::default()
    };
    let Some(r) = render(doc, opts, "long") else {
        return;
    };
    let started = std::time::Instant::now();
    let doc = read(&r);
    let took = started.elapsed();
    eprintln!(
        "{} pages, {} bytes, {} tables, {} rows: read in {took:?}",
        doc.pages.unwrap_or(0),
        r.pdf.len(),
        doc.tables().count(),
        doc.tables().map(|t| t.rows.len()).sum::<usize>()
    );
    check_tables(&r, &doc);
    if let Ok(dir) = std::env::var("PDF_KEEP") {
        let _ = std::fs::copy(&r.path, Path::new(&dir).join("long.pdf"));
    }
    assert!(doc.pages.unwrap_or(0) >= 250);
    if !cfg!(debug_assertions) {
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
}

/// Prints what the reader makes of `$PDF_FILE` (for inspection).
#[test]
#[ignore]
fn dump_reading() {
    let Ok(path) = std::env::var("PDF_FILE") else {
        eprintln!("set PDF_FILE to the PDF to print");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let t = std::time::Instant::now();
    let doc = dicomtap_draft::read::pdf::read(&bytes, &path);
    eprintln!("read in {:?}", t.elapsed());
    match doc {
        Ok(doc) => {
            eprintln!(
                "pages {:?} title {:?} blocks {} problems {:?}",
                doc.pages,
                doc.title,
                doc.blocks.len(),
                doc.problems
            );
            for b in &doc.blocks {
                match b {
                    dicomtap_draft::Block::Heading { level, text, at } => {
                        println!("H{level} [{at}] {text}")
                    }
                    dicomtap_draft::Block::Line { text, at } => println!("L [{at}] {text}"),
                    dicomtap_draft::Block::Table(t) => {
                        println!("T [{}] caption {:?} header {:?}", t.at, t.caption, t.header);
                        for r in &t.rows {
                            println!("  R [{}] {:?}", r.at, r.cells);
                        }
                    }
                }
            }
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
