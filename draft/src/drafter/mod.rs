//! A [`Document`] to a draft statement: a first pass collects what each block says
//! ([`scan`], [`parameters`]), a second decides what it means for the whole document
//! ([`assemble`]); the result is written as TOML with `[x.evidence]` and loaded back
//! through the statement loader, so a draft always passes `dicomtap statement check`.

pub mod assemble;
pub mod evidence;
pub mod parameters;
pub mod report;
pub mod scan;

use std::path::Path;

use dicomtap_analyzer::statement::{self, Statement, write};

use crate::document::Document;
pub use evidence::{Evidence, EvidenceMap};
pub use report::{Note, Report, SectionSummary};

/// A drafted statement: the TOML to write, the statement it loads as, its evidence and the
/// review report.
#[derive(Debug, Clone)]
pub struct Drafted {
    pub toml: String,
    pub statement: Statement,
    pub evidence: EvidenceMap,
    pub report: Report,
}

/// Why a draft could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("not a conformance statement: no SOP class, transfer syntax or AE title was found in it")]
    NotAStatement,
    #[error("the draft does not load as a statement ({0}); this is a bug in the drafter, please report it with the document")]
    Invalid(String),
}

/// Drafts a statement from a document.
pub fn draft(doc: &Document) -> Result<Drafted, DraftError> {
    draft_named(doc, None)
}

/// Drafts a statement, with the device name given (to keep names unique in a scope).
pub fn draft_named(doc: &Document, device_name: Option<&str>) -> Result<Drafted, DraftError> {
    let scan = scan::scan(doc);
    if scan.caps.is_empty() && scan.ts_lists.is_empty() && scan.aes.is_empty() {
        return Err(DraftError::NotAStatement);
    }
    let params = parameters::find(&scan.sentences);
    let mut report = Report::new(&doc.source, doc.format, doc.pages);
    report.unmatched = scan.unmatched.clone();
    report.inconsistencies = scan.inconsistencies.clone();
    report.close_matches = scan.close.clone();
    report.unreadable = scan.unreadable.clone();
    let mut asm = assemble::assemble(doc, &scan, &params, &mut report);
    if let Some(n) = device_name {
        asm.statement.device.name = n.to_owned();
    }
    report.device = asm.statement.device.name.clone();
    report.private_uids = asm.statement.private_uids.len();
    report.aes = asm
        .statement
        .ae
        .iter()
        .map(|a| {
            let scu = a
                .capability
                .iter()
                .filter(|c| c.role == statement::Role::Scu)
                .count();
            (a.title.clone(), scu, a.capability.len() - scu)
        })
        .collect();
    report.sections = scan
        .sections
        .iter()
        .zip(&scan.per_section)
        .map(|(s, &n)| SectionSummary {
            title: if s.title.is_empty() {
                "(before the first heading)".into()
            } else {
                s.title.clone()
            },
            at: scan
                .sentences
                .iter()
                .find(|x| scan.sections.get(x.section).is_some_and(|y| std::ptr::eq(y, s)))
                .map(|x| x.at.clone())
                .unwrap_or_default(),
            claims: n,
        })
        .collect();
    let opts = write::WriteOptions {
        header: report.header_lines(),
        x: Some(asm.evidence.to_toml()),
    };
    let toml = write::to_toml_with(&asm.statement, &opts);
    let loaded = statement::parse(&toml, Path::new(&doc.source)).map_err(|e| {
        DraftError::Invalid(match e {
            statement::StatementError::Invalid(d) => d
                .iter()
                .map(|x| format!("line {}: {}: {}", x.line, x.key, x.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        })
    })?;
    Ok(Drafted {
        toml,
        statement: loaded,
        evidence: asm.evidence,
        report,
    })
}
