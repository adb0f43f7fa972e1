//! `dicomtap statement import DOCUMENT...`: statements drafted from vendors' conformance
//! statement documents (PDF, HTML, text, Markdown, reStructuredText) or converted from
//! dcm4che device configurations (JSON), one statement per document.
//!
//! All documents are read and drafted before anything is written: one that cannot be
//! read is an error naming it, and then nothing is written (exit 2).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use dicomtap_analyzer::statement::{import, write};
use dicomtap_draft::read::{self, ReadError};
use dicomtap_draft::{Report, drafter};

use super::EXIT_USAGE;
use super::statement::{emit, verify};

#[derive(clap::Args)]
pub struct Args {
    /// The documents: vendor conformance statements (PDF, HTML, text, Markdown, RST) or
    /// dcm4che device JSON. Several need --out-dir.
    #[arg(required = true, value_name = "DOCUMENT")]
    inputs: Vec<PathBuf>,
    /// Write the statement here instead of standard output (one document).
    #[arg(short, long, value_name = "FILE", conflicts_with = "out_dir")]
    output: Option<PathBuf>,
    /// Write one statement per document into this directory, named after the document
    /// (`acme-ct.pdf` -> `acme-ct.toml`); created when missing. Device names are made
    /// unique across the documents.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Write the review report here: per section what was drafted, names that matched no
    /// registry entry, inconsistencies, what could not be read, what was assumed and what
    /// the document does not say. HTML when FILE ends in .html, text otherwise.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Overwrite statements that already exist in --out-dir.
    #[arg(long)]
    force: bool,
}

/// One document, converted.
struct Converted {
    input: PathBuf,
    toml: String,
    device: String,
    ae_titles: Vec<String>,
    report: Option<Report>,
    summary: String,
}

/// The PDF libraries panic on some malformed files; the reader catches that and reports
/// the file as damaged, so the panic's own message (and a backtrace hint) would only
/// confuse: it goes to the debug log instead. Other panics print as usual.
fn quiet_library_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_pdf_library = info.location().is_some_and(|l| {
            let f = l.file();
            [
                "pdf-extract",
                "lopdf",
                "type1-encoding-parser",
                "adobe-cmap-parser",
                "euclid",
            ]
            .iter()
            .any(|c| f.contains(c))
        });
        if in_pdf_library {
            tracing::debug!("PDF library panic (caught): {info}");
        } else {
            default(info);
        }
    }));
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    quiet_library_panics();
    if a.inputs.len() > 1 && a.out_dir.is_none() {
        say_err!(
            "statement import: {} documents given; use --out-dir DIR to write one statement for each",
            a.inputs.len()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    // Every report output is opened before any work, so a bad path fails first.
    if let Some(r) = &a.report {
        std::fs::write(r, b"").with_context(|| format!("{}: cannot write", r.display()))?;
    }
    let mut done: Vec<Converted> = Vec::new();
    let mut failed = 0usize;
    let mut names = BTreeSet::new();
    for input in &a.inputs {
        match convert(input, &mut names) {
            Ok(c) => done.push(c),
            Err(msg) => {
                say_err!("{}: {msg}", input.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        say_err!(
            "statement import: {failed} of {} document(s) could not be read; nothing written",
            a.inputs.len()
        );
        if let Some(r) = &a.report {
            let _ = std::fs::remove_file(r);
        }
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    // AE titles must be unique across a scope (the checker matches devices by them).
    let mut seen: Vec<(String, String)> = Vec::new();
    for c in &done {
        for t in &c.ae_titles {
            if let Some((_, other)) = seen.iter().find(|(x, _)| x == t) {
                say_err!(
                    "{}: warning: AE title {t} is also drafted for {other}; give one of them its real title before loading both",
                    c.input.display()
                );
            }
            seen.push((t.clone(), c.device.clone()));
        }
    }
    let targets: Vec<Option<PathBuf>> = match &a.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            let mut used = BTreeSet::new();
            let mut v = Vec::new();
            for c in &done {
                let stem = file_stem(&c.input);
                let mut name = format!("{stem}.toml");
                let mut n = 2;
                while !used.insert(name.clone()) {
                    name = format!("{stem}-{n}.toml");
                    n += 1;
                }
                let p = dir.join(name);
                if p.exists() && !a.force {
                    bail!(
                        "{}: exists; remove it or pass --force to overwrite (nothing written)",
                        p.display()
                    );
                }
                v.push(Some(p));
            }
            v
        }
        None => vec![a.output.clone()],
    };
    for (c, target) in done.iter().zip(&targets) {
        verify(&c.toml, target.as_deref().unwrap_or(Path::new("<import>")))?;
        emit(&c.toml, target.as_deref())?;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{}{}",
            c.summary,
            target
                .as_deref()
                .map(|t| format!(" -> {}", t.display()))
                .unwrap_or_default()
        );
    }
    if let Some(r) = &a.report {
        let reports: Vec<Report> = done.iter().filter_map(|c| c.report.clone()).collect();
        let text = if r
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
        {
            drafter::report::html_page(&reports)
        } else {
            reports
                .iter()
                .map(Report::to_text)
                .collect::<Vec<_>>()
                .join("\n")
        };
        std::fs::write(r, text).with_context(|| format!("{}: cannot write", r.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn file_stem(p: &Path) -> String {
    let s: String = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "statement".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "statement".into() } else { s }
}

/// Reads and converts one document; the error is the message to print after its name.
fn convert(input: &Path, names: &mut BTreeSet<String>) -> Result<Converted, String> {
    let size = std::fs::metadata(input)
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    if size > read::MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge {
            size,
            max: read::MAX_INPUT_BYTES,
        }
        .to_string());
    }
    let bytes = std::fs::read(input).map_err(|e| format!("cannot read: {e}"))?;
    if looks_like_json(&bytes) {
        return from_json(input, &bytes, names);
    }
    let doc = read::read_bytes(&bytes, &input.display().to_string()).map_err(|e| e.to_string())?;
    let base = drafter::assemble::device_name(&doc);
    let unique = unique_name(&base, names);
    let d = drafter::draft_named(&doc, Some(&unique)).map_err(|e| e.to_string())?;
    let r = &d.report;
    let issues = r.unmatched.len() + r.inconsistencies.len() + r.unreadable.len();
    let caps: usize = r.aes.iter().map(|(_, u, p)| u + p).sum();
    let summary = format!(
        "{}: drafted device {} ({}{}): {} AE(s) {}, {caps} capabilities, {} private UID(s); {issues} to review, {} not stated",
        input.display(),
        r.device,
        r.format.as_str(),
        r.pages.map(|p| format!(", {p} pages")).unwrap_or_default(),
        r.aes.len(),
        r.aes
            .iter()
            .map(|(t, _, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        r.private_uids,
        r.missing.len()
    );
    Ok(Converted {
        input: input.to_owned(),
        device: d.statement.device.name.clone(),
        ae_titles: d.statement.ae.iter().map(|a| a.title.clone()).collect(),
        toml: d.toml,
        report: Some(d.report),
        summary,
    })
}

fn unique_name(base: &str, names: &mut BTreeSet<String>) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn looks_like_json(bytes: &[u8]) -> bool {
    let start = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(bytes);
    start
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[')
}

/// A dcm4che device configuration.
fn from_json(
    input: &Path,
    bytes: &[u8],
    names: &mut BTreeSet<String>,
) -> Result<Converted, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("JSON that is not UTF-8: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("line {}: invalid JSON: {e}", e.line()))?;
    let name = input.file_name().map_or_else(
        || input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut imported = import::from_dcm4che(&json, &name).map_err(|e| e.to_string())?;
    let unique = unique_name(&imported.statement.device.name, names);
    imported.statement.device.name = unique;
    let mut header = vec![format!(
        "Imported by dicomtap {} from {name}.",
        env!("CARGO_PKG_VERSION")
    )];
    header.push(
        "Review before use: dcm4che configurations say nothing of statuses, private creators,"
            .into(),
    );
    header.push("implementation identity or storage commitment behaviour.".into());
    if !imported.notes.is_empty() {
        header.push(String::new());
        header.push("Not imported:".into());
        header.extend(imported.notes.iter().map(|n| format!("- {n}")));
    }
    for n in &imported.notes {
        say_err!("{}: note: {n}", input.display());
    }
    let opts = write::WriteOptions { header, x: None };
    let toml = write::to_toml_with(&imported.statement, &opts);
    Ok(Converted {
        input: input.to_owned(),
        device: imported.statement.device.name.clone(),
        ae_titles: imported
            .statement
            .ae
            .iter()
            .map(|a| a.title.clone())
            .collect(),
        summary: format!(
            "{}: imported device {} (dcm4che configuration)",
            input.display(),
            imported.statement.device.name
        ),
        toml,
        report: None,
    })
}
