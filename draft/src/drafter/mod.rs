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
    #[error(
        "not a conformance statement: no SOP class, transfer syntax or AE title was found in it"
    )]
    NotAStatement,
    #[error(
        "the draft does not load as a statement ({0}); this is a bug in the drafter, please report it with the document"
    )]
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
                // "Storage Service / SOP Classes": generic sub-headings need their parent.
                match s.parent.and_then(|p| scan.sections.get(p)) {
                    Some(p) if !p.title.is_empty() && p.level > 0 && s.title.len() < 24 => {
                        format!("{} / {}", p.title, s.title)
                    }
                    _ => s.title.clone(),
                }
            },
            at: scan
                .sentences
                .iter()
                .find(|x| {
                    scan.sections
                        .get(x.section)
                        .is_some_and(|y| std::ptr::eq(y, s))
                })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Block, Format, Loc, Row, Table};
    use dicomtap_analyzer::statement::Role;

    fn at(page: u32, line: u32) -> Loc {
        Loc {
            page: Some(page),
            line,
            ..Loc::default()
        }
    }

    fn row(page: u32, line: u32, cells: &[&str]) -> Row {
        Row {
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
            at: at(page, line),
        }
    }

    /// A PS3.2-layout statement as a PDF reader gives it: an AE table, a presentation
    /// context table with a role column, multi-line transfer syntax cells, a reference to
    /// a transfer syntax table, a private transfer syntax, a name/UID mismatch and a
    /// parameter table.
    fn ps32() -> Document {
        let h = |level, text: &str, page, line| Block::Heading {
            level,
            text: text.into(),
            at: at(page, line),
        };
        let l = |text: &str, page, line| Block::Line {
            text: text.into(),
            at: at(page, line),
        };
        Document {
            source: "acme-ct.pdf".into(),
            format: Format::Pdf,
            pages: Some(9),
            title: Some("ACME CT-9000 DICOM Conformance Statement".into()),
            blocks: vec![
                h(1, "4 Networking", 3, 1),
                Block::Table(Table {
                    caption: Some("Table 4.1-1 Application Entities".into()),
                    header: vec![
                        "Application Entity".into(),
                        "Default AE Title".into(),
                        "Default TCP/IP Port".into(),
                    ],
                    rows: vec![row(3, 5, &["Storage", "CT9000", "104"])],
                    at: at(3, 4),
                }),
                h(3, "4.2.1 Storage AE Specification", 4, 1),
                Block::Table(Table {
                    caption: Some("Table 4.2-1 Presentation Contexts".into()),
                    header: vec![
                        "Abstract Syntax".into(),
                        "UID".into(),
                        "Transfer Syntax".into(),
                        "Role".into(),
                        "Ext. Neg.".into(),
                    ],
                    rows: vec![
                        row(
                            4,
                            6,
                            &[
                                "CT Image Storage",
                                "1.2.840.10008.5.1.4.1.1.2",
                                "JPEG Lossless SV1\nExplicit VR Little Endian\nImplicit VR Little Endian\nACME Fast Lossless 1.2.3.4.5.6.7.8.999",
                                "SCU",
                                "None",
                            ],
                        ),
                        row(
                            4,
                            10,
                            &[
                                "MR Image Storage",
                                "1.2.840.10008.5.1.4.1.1.2",
                                "See Table 4.2-3",
                                "SCU",
                                "None",
                            ],
                        ),
                        row(
                            5,
                            3,
                            &[
                                "Storage Commitment Push Model SOP Class",
                                "1.2.840.10008.1.20.1",
                                "Implicit VR Little Endian",
                                "SCU",
                                "None",
                            ],
                        ),
                        row(
                            5,
                            4,
                            &[
                                "Coffee Machine Storage",
                                "",
                                "Implicit VR Little Endian",
                                "SCP",
                                "",
                            ],
                        ),
                    ],
                    at: at(4, 5),
                }),
                Block::Table(Table {
                    caption: Some("Table 4.2-3 Uncompressed Transfer Syntaxes".into()),
                    header: vec!["Transfer Syntax Name".into(), "UID".into()],
                    rows: vec![
                        row(5, 8, &["Explicit VR Little Endian", "1.2.840.10008.1.2.1"]),
                        row(5, 9, &["Implicit VR Little Endian", "1.2.840.10008.1.2"]),
                    ],
                    at: at(5, 7),
                }),
                l(
                    "The N-EVENT-REPORT is accepted on the same association or on a new association.",
                    6,
                    2,
                ),
                Block::Table(Table {
                    caption: Some("Table 4.2-5 Communication Parameters".into()),
                    header: vec!["Parameter".into(), "Value".into()],
                    rows: vec![
                        row(7, 3, &["Maximum PDU size the AE can receive", "28672"]),
                        row(7, 4, &["Maximum number of simultaneous associations", "2"]),
                        row(7, 5, &["ARTIM timeout", "30 s"]),
                        row(7, 6, &["Implementation Class UID", "1.2.3.4.5.1234.1"]),
                        row(7, 7, &["Implementation Version Name", "CT9000_52"]),
                    ],
                    at: at(7, 2),
                }),
                l("Supported character sets: ISO_IR 100 and ISO_IR 192.", 8, 1),
            ],
            problems: vec![],
        }
    }

    #[test]
    fn a_ps32_layout_statement() {
        let d = draft(&ps32()).expect("drafts");
        let s = &d.statement;
        assert_eq!(s.device.name, "ACME_CT_9000");
        let ae = s.ae("CT9000").expect("AE from the AE table");
        assert_eq!(ae.port, Some(104));
        let ct = ae
            .capability("1.2.840.10008.5.1.4.1.1.2", Role::Scu)
            .expect("CT SCU");
        let ts: Vec<&str> = ct
            .transfer_syntaxes
            .iter()
            .map(|t| t.uid.as_str())
            .collect();
        assert_eq!(
            ts,
            [
                "1.2.840.10008.1.2.4.70",
                "1.2.840.10008.1.2.1",
                "1.2.840.10008.1.2",
                "1.2.3.4.5.6.7.8.999"
            ]
        );
        // The private transfer syntax is kept with its documented name.
        let p = s
            .private_uids
            .get("1.2.3.4.5.6.7.8.999")
            .expect("private TS");
        assert_eq!(p.name.as_deref(), Some("ACME Fast Lossless"));
        // "MR Image Storage" printed with CT's UID: reported, drafted from the UID.
        assert!(
            d.report
                .inconsistencies
                .iter()
                .any(|n| n.text.contains("MR Image Storage") && n.at.page == Some(4)),
            "{:?}",
            d.report.inconsistencies
        );
        // "Coffee Machine Storage" is in no registry: reported, not drafted.
        assert!(
            d.report
                .unmatched
                .iter()
                .any(|n| n.text.contains("Coffee Machine Storage")),
            "{:?}",
            d.report.unmatched
        );
        let sc = ae
            .capability(dicomtap_wire::uid::STORAGE_COMMITMENT_PUSH_MODEL, Role::Scu)
            .expect("commitment SCU");
        let sc = sc
            .storage_commitment
            .as_ref()
            .expect("commitment behaviour");
        assert_eq!(sc.report_on.len(), 2);
        assert_eq!(ae.max_pdu_receive, Some(28672));
        assert_eq!(ae.max_associations.initiator, Some(2), "{}", d.toml);
        assert_eq!(ae.timeouts_s.artim, Some(30.0));
        assert_eq!(
            ae.implementation_class_uid.as_deref(),
            Some("1.2.3.4.5.1234.1")
        );
        assert_eq!(ae.implementation_version_name.as_deref(), Some("CT9000_52"));
        assert_eq!(ae.character_sets, ["ISO_IR 6", "ISO_IR 100", "ISO_IR 192"]);
        // Evidence for a claim names its page and line.
        let ev = d
            .evidence
            .0
            .get("ae.CT9000.capability.CTImageStorage.SCU")
            .expect("evidence");
        assert_eq!(ev.at.to_string(), "page 4, line 6");
        let ev = d
            .evidence
            .0
            .get("ae.CT9000.max_pdu_receive")
            .expect("evidence");
        assert_eq!(ev.at.to_string(), "page 7, line 3");
        // The written TOML keeps it, and loads.
        assert!(
            d.toml
                .contains("\"ae.CT9000.max_pdu_receive\" = { at = \"page 7, line 3\""),
            "{}",
            d.toml
        );
    }

    #[test]
    fn a_row_for_a_group_of_sop_classes_listed_elsewhere() {
        let doc = Document {
            source: "pacs.html".into(),
            format: Format::Html,
            pages: None,
            title: Some("PACS DICOM Conformance Statement".into()),
            blocks: vec![
                Block::Heading {
                    level: 2,
                    text: "4.2 Storage SCP AE".into(),
                    at: at(1, 1),
                },
                Block::Table(Table {
                    caption: Some("Table 4.2-4 Storage SOP Classes".into()),
                    header: vec!["SOP Class Name".into(), "SOP Class UID".into()],
                    rows: vec![
                        row(1, 3, &["CT Image Storage", "1.2.840.10008.5.1.4.1.1.2"]),
                        row(1, 4, &["12-lead ECG Waveform Storage", ""]),
                    ],
                    at: at(1, 2),
                }),
                Block::Table(Table {
                    caption: Some("Table 4.2-5 Presentation Contexts".into()),
                    header: vec![
                        "Abstract Syntax".into(),
                        "Transfer Syntax".into(),
                        "Role".into(),
                    ],
                    rows: vec![row(
                        2,
                        3,
                        &[
                            "All Storage SOP Classes of Table 4.2-4",
                            "Explicit VR Little Endian\nImplicit VR Little Endian",
                            "SCP",
                        ],
                    )],
                    at: at(2, 2),
                }),
            ],
            problems: vec![],
        };
        let d = draft(&doc).expect("drafts");
        let ae = &d.statement.ae[0];
        assert_eq!(ae.capability.len(), 2, "{}", d.toml);
        for uid in ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.9.1.1"] {
            let c = ae
                .capability(uid, Role::Scp)
                .expect("SCP from the group row");
            let ts: Vec<&str> = c.transfer_syntaxes.iter().map(|t| t.uid.as_str()).collect();
            assert_eq!(ts, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]);
        }
        assert!(
            d.report.assumptions.is_empty(),
            "{:?}",
            d.report.assumptions
        );
    }

    #[test]
    fn a_document_without_claims_is_not_a_statement() {
        let doc = Document {
            source: "notes.txt".into(),
            format: Format::Text,
            pages: None,
            title: None,
            blocks: vec![Block::Line {
                text: "Buy milk.".into(),
                at: Loc::default(),
            }],
            problems: vec![],
        };
        assert!(matches!(draft(&doc), Err(DraftError::NotAStatement)));
    }
}
