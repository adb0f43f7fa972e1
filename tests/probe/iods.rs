#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The probe's generated instances (`dicomtap_endpoints::peers::iods`) checked by David
//! Clunie's `dciodvfy` (package dicom3tools): no IOD error in any of them, in any of the
//! three transfer syntaxes; and read back whole by DCMTK's `dcmdump`.

use crate::support;

use dicomtap_endpoints::peers::iods::{self, TestMarks};
use dicomtap_endpoints::peers::study::new_uid;
use support::*;

#[test]
fn generated_instances_pass_dciodvfy() {
    if !require(
        "generated_instances_pass_dciodvfy",
        &["dciodvfy", "dcmdump"],
    ) {
        return;
    }
    let dir = temp_dir("probe-iods");
    let marks = TestMarks {
        patient_name: "DICOMTAPTEST^IODS".into(),
        patient_id: "DICOMTAPTEST-IODS".into(),
        study_uid: new_uid(),
        study_description: "dicomtap probe test data".into(),
        patient_comments: "test data written by dicomtap probe".into(),
        study_date: "20260101".into(),
        study_time: "120000".into(),
    };
    let mut failures = Vec::new();
    for (iod, ts) in iods::IODS
        .iter()
        .flat_map(|i| iods::TRANSFER_SYNTAXES.iter().map(move |t| (i, *t)))
    {
        let obj = iods::generate(iod.sop_class, &marks, ts).unwrap();
        let path = dir
            .path()
            .join(format!("{}-{ts}.dcm", iod.name.replace(' ', "_")));
        std::fs::write(&path, obj.to_part10(Some("DICOMTAP")).unwrap()).unwrap();
        let out = run(
            &format!("dciodvfy-{}-{ts}", iod.name.replace(' ', "_")),
            command("dciodvfy", &[path.to_str().unwrap()]),
            dir.path(),
            std::time::Duration::from_secs(30),
        );
        let text = out.text();
        // dcmdump reads it back whole: Rows as generated, no parse error.
        let dump = run(
            &format!("dcmdump-{}-{ts}", iod.name.replace(' ', "_")),
            command("dcmdump", &[path.to_str().unwrap()]),
            dir.path(),
            std::time::Duration::from_secs(30),
        )
        .text();
        if dump.contains("E: ") || (dump.contains("(0028,0010)") && !dump.contains("US 16")) {
            failures.push(format!("{} in {ts}: dcmdump:\n{dump}", iod.name));
        }
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
        if !errors.is_empty() {
            failures.push(format!("{} in {ts}:\n  {}", iod.name, errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "dciodvfy errors:\n{}",
        failures.join("\n")
    );
}
