//! `dicomtap statement infer` credits a device with what it did itself, not with what it
//! relayed: against Orthanc, which stores an instance (with GE private creators and
//! ISO_IR 100) and hands it back through C-GET and C-MOVE sub-operations.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use support::peers::{orthanc, storescp, storescu_command};
use support::{Capture, command, free_port, require_peers, run, run_ok, temp_dir, workspace_dir};

const T: Duration = Duration::from_secs(120);

#[test]
fn infer_orthanc_from_get_and_move_sub_operations() {
    let Some((_, data)) = require_peers(
        "infer_orthanc",
        &[
            "Orthanc", "storescu", "getscu", "movescu", "storescp", "dumpcap",
        ],
    ) else {
        return;
    };
    let tmp = temp_dir("infer-orthanc");
    let dir = tmp.path();
    let ct = data.test_files.join("CT_small.dcm");
    let (_dest, dest_port) = storescp("move-dest", &dir.join("moved"), dir, &["-aet", "MOVESCP"]);
    let port = free_port();
    let _orthanc = orthanc(
        dir,
        "orthanc",
        port,
        serde_json::json!({
            // C-GET and C-MOVE are only answered for known AE titles.
            "DicomModalities": {
                "dest": ["MOVESCP", "127.0.0.1", dest_port],
                "getscu": ["GETSCU", "127.0.0.1", 104],
                "movescu": ["MOVESCU", "127.0.0.1", 104],
            }
        }),
    );
    let cap = Capture::start("infer-orthanc", &[port, dest_port], dir);
    let p = port.to_string();
    run_ok(
        "storescu",
        storescu_command(&["-aet", "STORESCU", "-aec", "ORTHANC"], port, &[ct]),
        dir,
        T,
    );
    // CT_small's study.
    let study = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";
    let key = format!("StudyInstanceUID={study}");
    run_ok(
        "getscu",
        command(
            "getscu",
            &[
                "-aet",
                "GETSCU",
                "-aec",
                "ORTHANC",
                "-od",
                dir.to_str().unwrap(),
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                &key,
                "127.0.0.1",
                &p,
            ],
        ),
        dir,
        T,
    );
    run_ok(
        "movescu",
        command(
            "movescu",
            &[
                "-aet",
                "MOVESCU",
                "-aec",
                "ORTHANC",
                "-aem",
                "MOVESCP",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                &key,
                "127.0.0.1",
                &p,
            ],
        ),
        dir,
        T,
    );
    let pcap = cap.finish();
    let pcap = pcap.to_str().unwrap();

    let inferred = run_ok(
        "infer",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "statement",
                "infer",
                "--ae",
                "ORTHANC",
                "--device",
                "ORTHANC_SEEN",
                pcap,
            ],
        ),
        dir,
        T,
    )
    .stdout;
    // Orthanc sent the CT twice (C-GET and C-MOVE sub-operations): relayed, not its own.
    assert!(
        inferred.contains("relayed_data_sets_not_counted = 2"),
        "{inferred}"
    );
    for relayed in ["GEMS_IDEN_01", "ISO_IR 100"] {
        assert!(
            !inferred.contains(relayed),
            "{relayed} is relayed:\n{inferred}"
        );
    }
    // getscu's role selection proposals are getscu's; Orthanc only answered them.
    assert!(!inferred.contains("role_selection ="), "{inferred}");
    assert!(
        inferred.contains("role_selections_answered ="),
        "{inferred}"
    );
    // Limits are observations, not claims.
    assert!(!inferred.contains("max_associations"), "{inferred}");
    assert!(
        inferred.contains("most_simultaneous_associations_as_acceptor = 1"),
        "{inferred}"
    );
    // The storage SCU role Orthanc took for the sub-operations is a capability.
    let file = dir.join("inferred.toml");
    std::fs::write(&file, &inferred).unwrap();
    let st = dicomtap_analyzer::statement::load(&file).unwrap();
    let ae = st.ae("ORTHANC").unwrap();
    assert!(
        ae.capability(
            "1.2.840.10008.5.1.4.1.1.2",
            dicomtap_analyzer::statement::Role::Scu
        )
        .is_some(),
        "{inferred}"
    );

    // Against the bundled Orthanc statement: no role-selection noise, nothing relayed.
    let bundled = workspace_dir().join("statements/orthanc-1.10.toml");
    let diff = run(
        "diff",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "statement",
                "diff",
                "--json",
                file.to_str().unwrap(),
                bundled.to_str().unwrap(),
            ],
        ),
        dir,
        T,
    );
    assert!(
        diff.status.code().is_some_and(|c| c <= 1),
        "{}",
        diff.text()
    );
    let text = diff.stdout;
    assert!(!text.contains("\"role-selection\""), "{text}");
    assert!(!text.contains("GEMS_"), "{text}");
    // Every difference left is a claim of the bundled statement that this short traffic
    // did not exercise; the inferred statement claims nothing Orthanc's does not.
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    for drift in d["drift"].as_array().unwrap() {
        for x in drift["differences"].as_array().unwrap() {
            let m = x["message"].as_str().unwrap();
            assert!(
                m.starts_with("ORTHANC has") || m.contains(": ORTHANC has"),
                "a difference the inferred statement made: {m}"
            );
        }
    }
}
