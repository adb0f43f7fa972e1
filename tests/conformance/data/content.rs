use super::*;

// ---------------------------------------------------------------------------------------
// character-set-not-claimed, private-creator-undocumented

/// storescu sends `files` to storescp, captured; the capture and storescp's port.
fn storescu_capture(scene: &Scene, name: &str, files: &[PathBuf]) -> (PathBuf, u16) {
    scene.with_storescp(name, &[], |port| {
        scene.storescu(port, "STORESCU", &[], files)
    })
}

/// DCMTK_STORESCU sending `sops` with these character sets and private creators.
fn storescu_statement(character_sets: &str, private_creators: &str, sops: &[&str]) -> String {
    let caps: Vec<(&str, &str, &str)> = sops.iter().map(|sop| (*sop, "SCU", ALL_TS)).collect();
    statement(
        "DCMTK_STORESCU",
        "STORESCU",
        &format!(
            "initiator = true\ncharacter_sets = {character_sets}\nprivate_creators = {private_creators}"
        ),
        &caps,
        "",
    )
}

#[test]
fn multilingual_files_in_unclaimed_character_sets_are_reported() {
    let Some((scene, _, data)) =
        conformance_scene("charsets", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    let files: Vec<PathBuf> = [
        "chrFren.dcm",                // ISO_IR 100
        "chrRuss.dcm",                // ISO_IR 144
        "chrGreek.dcm",               // ISO_IR 126
        "chrH31.dcm",                 // \ISO 2022 IR 87
        "chrX1.dcm",                  // ISO_IR 192
        "chrJapMultiExplicitIR6.dcm", // ISO 2022 IR 6\ISO 2022 IR 87
    ]
    .iter()
    .map(|f| data.charset_files.join(f))
    .collect();
    let (capture, port) = storescu_capture(&scene, "charsets", &files);
    let storescu = |sets: &str| {
        storescu_statement(
            sets,
            "[\"AGFA\"]",
            &[
                "SecondaryCaptureImageStorage",
                "ComputedRadiographyImageStorage",
            ],
        )
    };
    // Latin-1 and UTF-8 are claimed; Cyrillic, Greek and Japanese are not. ISO 2022 IR 6
    // (the default repertoire with code extensions) needs no claim of its own.
    let (findings, _, _) = scene.analyze_with(
        "storescu.toml",
        &storescu("[\"ISO_IR 100\", \"ISO_IR 192\"]"),
        &capture,
    );
    let f = with(&findings, "character-set-not-claimed", "DCMTK_STORESCU");
    let mut observed: Vec<&str> = f.iter().map(|f| text(&f["observed"])).collect();
    observed.sort_unstable();
    assert_eq!(
        observed,
        [
            "data set declares Specific Character Set \"ISO_IR 126\"",
            "data set declares Specific Character Set \"ISO_IR 144\"",
            "data set declares Specific Character Set \"\\\\ISO 2022 IR 87\"",
        ],
        "{}",
        dump(&findings)
    );
    for x in &f {
        assert_eq!(
            x["claim"],
            "character_sets = [\"ISO_IR 100\", \"ISO_IR 192\"]"
        );
        assert_evidence(x, &capture, port, Some("requestor"));
        assert!(x["evidence"]["sop_instance"].is_string(), "{x}");
    }
    assert_eq!(
        of_rule(&findings, "character-set-not-claimed").len(),
        3,
        "{}",
        dump(&findings)
    );
    // The text itself is valid in each declared set.
    assert_not_raised(&findings, "text-invalid-in-character-set");

    // Every set the files declare claimed: nothing.
    scene.assert_conforms(
        "storescu.toml",
        &storescu(
            "[\"ISO_IR 100\", \"ISO_IR 192\", \"ISO_IR 144\", \"ISO_IR 126\", \"ISO 2022 IR 87\"]",
        ),
        &capture,
    );
}

#[test]
fn undocumented_private_creators_are_reported_for_the_sender() {
    let Some((scene, _, data)) =
        conformance_scene("creators", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    // CT_small.dcm carries nine GEMS_* private creators; MR_small.dcm none.
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let (capture, port) = storescu_capture(&scene, "creators", &files);
    let storescu = |creators: &str| {
        storescu_statement(
            "[\"ISO_IR 100\"]",
            creators,
            &["CTImageStorage", "MRImageStorage"],
        )
    };
    let documented = [
        "GEMS_IDEN_01",
        "GEMS_PATI_01",
        "GEMS_ACQU_01",
        "GEMS_RELA_01",
        "GEMS_STDY_01",
        "GEMS_SERS_01",
        "GEMS_IMAG_01",
    ];
    let (findings, _, _) = scene.analyze_with(
        "storescu.toml",
        &storescu(&format!("{documented:?}")),
        &capture,
    );
    let f = one_of_rule(&findings, "private-creator-undocumented", "DCMTK_STORESCU");
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("data set has private creator(s) ")
            && observed.contains("\"GEMS_IMPS_01\" (0029,")
            && observed.contains("\"GEMS_PARM_01\" (0043,"),
        "{observed}"
    );
    for d in documented {
        assert!(!observed.contains(d), "{d} is documented: {observed}");
    }
    assert_eq!(f["claim"], format!("private_creators = {documented:?}"));
    assert_eq!(f["evidence"]["sop_instance"], CT_SMALL_INSTANCE);
    assert_evidence(&f, &capture, port, Some("requestor"));

    let all: Vec<&str> = documented
        .iter()
        .copied()
        .chain(["GEMS_IMPS_01", "GEMS_PARM_01"])
        .collect();
    scene.assert_conforms("storescu.toml", &storescu(&format!("{all:?}")), &capture);
}

// ---------------------------------------------------------------------------------------
// implementation-uid-changed

#[test]
fn an_implementation_class_uid_other_than_claimed_is_reported() {
    let Some((scene, py, data)) = conformance_scene("impl-uid", &["storescp", "dumpcap"]) else {
        return;
    };
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let file = data.test_files.join("MR_small.dcm");
    let (out, capture) = send_captured(&scene, &py, "impl-uid", port, &file, "0");
    drop(scp);
    assert!(out.status.success(), "send failed:\n{}", out.text());
    assert!(out.stdout.contains("stored 0000"), "{}", out.text());
    // What pynetdicom really sends, from pynetdicom itself.
    let real = run_ok(
        "impl-uid",
        command(
            py.to_str().unwrap(),
            &[
                "-c",
                "import pynetdicom; print(pynetdicom.PYNETDICOM_IMPLEMENTATION_UID)",
            ],
        ),
        scene.path(),
        Duration::from_secs(30),
    )
    .stdout
    .trim()
    .to_string();
    assert!(real.starts_with("1.2.826.0.1.3680043.9.3811."), "{real}");
    let sender = |uid: &str| {
        statement(
            "PY_SENDER",
            "PYSENDER",
            &format!("initiator = true\nimplementation_class_uid = \"{uid}\""),
            &[("MRImageStorage", "SCU", ALL_TS)],
            "",
        )
    };
    // The statement names an older build's UID.
    let (findings, _, _) = scene.analyze_with(
        "sender.toml",
        &sender("1.2.826.0.1.3680043.9.3811.1.5.0"),
        &capture,
    );
    let f = sole(&findings, "implementation-uid-changed", "PY_SENDER");
    assert_eq!(
        f["claim"],
        "implementation_class_uid = \"1.2.826.0.1.3680043.9.3811.1.5.0\""
    );
    assert_eq!(
        text(&f["observed"]),
        format!("sent Implementation Class UID {real:?}")
    );
    assert_evidence(&f, &capture, port, Some("requestor"));

    scene.assert_conforms("sender.toml", &sender(&real), &capture);
}
