#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Drafts from PDFs that headless Chromium prints from Orthanc's real statement laid out
//! as PS3.2 (tests/support), scored against what was printed: every presentation context
//! row (SOP class, role, transfer syntaxes) must be drafted, and nothing else.

mod support;

use std::collections::BTreeSet;

use dicomtap_analyzer::statement::Role;
use dicomtap_draft::{draft, read_bytes};
use support::chromium::{self, Print};
use support::statement::{self, Layout, Orthanc};

#[test]
fn a_printed_ps32_statement_is_drafted_row_for_row() {
    let Some(chromium) = chromium::require() else {
        return;
    };
    let orthanc = Orthanc::load("2021");
    let printed = statement::build(&orthanc, &Layout::default());
    let dir = tempfile::tempdir().unwrap();
    let pdf = chromium::print(
        &chromium,
        &printed.html,
        dir.path(),
        "orthanc",
        Print::default(),
    )
    .expect("printed");
    let doc = read_bytes(&pdf, "orthanc.pdf").expect("read as PDF");
    assert!(doc.pages.unwrap_or(0) > 10, "{:?}", doc.pages);
    let d = draft(&doc).expect("drafted");
    // Transfer syntax names as printed, to UIDs, from the same document's own list.
    let ts_uid = |name: &str| {
        orthanc
            .transfer_syntaxes()
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.uid.clone())
            .unwrap_or_else(|| panic!("printed transfer syntax {name} is in Orthanc's list"))
    };
    let mut want = BTreeSet::new();
    let mut rows = 0;
    for t in &printed.context_tables {
        for r in &t.rows {
            rows += 1;
            let role = if r.role == "SCU" {
                Role::Scu
            } else {
                Role::Scp
            };
            want.insert((r.uid.clone(), role));
            let cap = d.statement.ae[0]
                .capability(&r.uid, role)
                .unwrap_or_else(|| panic!("{} {} drafted\n{}", r.uid, r.role, d.report.to_text()));
            let got: BTreeSet<String> = cap
                .transfer_syntaxes
                .iter()
                .map(|t| t.uid.clone())
                .collect();
            let expected: BTreeSet<String> =
                r.transfer_syntaxes.iter().map(|n| ts_uid(n)).collect();
            assert_eq!(got, expected, "{} {}", r.abstract_syntax, r.role);
            // Its evidence is on a page of the PDF.
            let key = format!(
                "ae.{}.capability.{}.{}",
                d.statement.ae[0].title,
                cap.sop_class.label(),
                role.as_str()
            );
            let ev = d.evidence.0.get(&key).expect("evidence");
            assert!(
                ev.at
                    .page
                    .is_some_and(|p| p >= 1 && p <= doc.pages.unwrap_or(0)),
                "{ev:?}"
            );
        }
    }
    assert!(rows > 100, "{rows}");
    let got: BTreeSet<(String, Role)> = d.statement.ae[0]
        .capability
        .iter()
        .map(|c| (c.sop_class.uid.clone(), c.role))
        .collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(extra.is_empty(), "drafted but not printed: {extra:?}");
    assert!(d.report.unmatched.is_empty(), "{}", d.report.to_text());
}
