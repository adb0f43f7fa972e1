use super::*;

// -------------------------------------------------------------------------------------
// Presentation contexts

/// storescp run with a profile (--config-file) that accepts CT only refuses MR, which the
/// statement claims: sop-class-claimed-but-refused. The statement of its real profile
/// raises nothing.
#[test]
fn storescp_profile_refuses_a_claimed_sop_class() {
    let Some(neg) = Neg::new("claimed-refused", &["storescp", "storescu"]) else {
        return;
    };
    let cfg = neg.path().join("storescp.cfg");
    std::fs::write(
        &cfg,
        "[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LocalEndianExplicit\n\
         TransferSyntax2 = OppositeEndianExplicit\nTransferSyntax3 = LittleEndianImplicit\n\
         [[PresentationContexts]]\n[CTOnly]\nPresentationContext1 = CTImageStorage\\Uncompressed\n\
         [[Profiles]]\n[CTOnly]\nPresentationContexts = CTOnly\n",
    )
    .unwrap();
    let profile = ["--config-file", cfg.to_str().unwrap(), "CTOnly"];
    let (capture, _) = neg
        .scene
        .with_storescp("claimed-refused", &profile, |port| {
            let out = storescu(
                &neg,
                port,
                "STORESCU",
                &["-R"],
                &[neg.file("CT_small.dcm"), neg.file("MR_small.dcm")],
            );
            assert!(
                out.text().contains("MR"),
                "storescu did not try the MR file:\n{}",
                out.text()
            );
        });

    let claims_mr = statement(
        "DCMTK_STORESCP",
        "STORESCP",
        "acceptor = true",
        &[("CTImageStorage", "SCP", ""), ("MRImageStorage", "SCP", "")],
    );
    let findings = neg.findings(&capture, &[&claims_mr]);
    let f = only(&findings, "DCMTK_STORESCP", "sop-class-claimed-but-refused");
    assert!(
        text(&f, "claim").contains("capability MRImageStorage SCP"),
        "{f}"
    );
    assert!(
        text(&f, "observed").contains("(MRImageStorage): abstract-syntax-not-supported"),
        "{f}"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    let real_profile = statement(
        "DCMTK_STORESCP",
        "STORESCP",
        "acceptor = true",
        &[("CTImageStorage", "SCP", "")],
    );
    neg.assert_clean(&capture, &[&real_profile]);
}

/// storescp +xb prefers Explicit VR Big Endian although its statement prefers Explicit
/// VR Little Endian (both proposed in one context with storescu +C):
/// acceptor-preference-ignored. Run with its default preference, nothing.
#[test]
fn storescp_preferring_big_endian_ignores_its_stated_preference() {
    let Some(neg) = Neg::new("preference", &["storescp", "storescu"]) else {
        return;
    };
    let stmt = statement(
        "DCMTK_STORESCP",
        "STORESCP",
        "acceptor = true",
        &[(
            "CTImageStorage",
            "SCP",
            "preferred_transfer_syntaxes = [\"ExplicitVRLittleEndian\", \"ExplicitVRBigEndian\"]",
        )],
    );
    let run_with = |name: &str, scp_args: &[&str]| {
        let (capture, _) = neg
            .scene
            .with_storescp(name, scp_args, |port| neg.store_ct(port, &["+C"]));
        neg.findings(&capture, &[&stmt])
    };

    let findings = run_with("prefer-big", &["+xb"]);
    let f = only(&findings, "DCMTK_STORESCP", "acceptor-preference-ignored");
    assert!(
        text(&f, "claim").contains("[ExplicitVRLittleEndian, ExplicitVRBigEndian]"),
        "{f}"
    );
    assert!(
        text(&f, "observed").starts_with(
            "chose ExplicitVRBigEndian for CTImageStorage although ExplicitVRLittleEndian was proposed"
        ),
        "{f}"
    );

    clean(&run_with("prefer-default", &[]), "DCMTK_STORESCP");
}

const TEN_STORAGE_CLASSES: [&str; 10] = [
    "CTImageStorage",
    "MRImageStorage",
    "SecondaryCaptureImageStorage",
    "UltrasoundImageStorage",
    "ComputedRadiographyImageStorage",
    "NuclearMedicineImageStorage",
    "PositronEmissionTomographyImageStorage",
    "RTImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "XRayAngiographicImageStorage",
];

/// A pynetdicom SCU proposes ten contexts and storescp accepts them all; statements that
/// claim at most eight: too-many-contexts for both, as requestor and as acceptor.
#[test]
fn ten_contexts_proposed_and_accepted_exceed_a_claim_of_eight() {
    let Some(neg) = Neg::new("contexts", &["storescp"]) else {
        return;
    };
    let contexts: Vec<Value> = TEN_STORAGE_CLASSES
        .iter()
        .map(|s| json!([s, UNCOMPRESSED_UIDS]))
        .collect();
    let (capture, _) = neg.scene.with_storescp("contexts", &[], |port| {
        neg.scu(
            json!({"port": port, "called": "STORESCP", "calling": "PYSCU", "contexts": contexts}),
        );
    });

    let stmts = |max: u32| {
        let scu: Vec<(&str, &str, &str)> = TEN_STORAGE_CLASSES
            .iter()
            .map(|s| (*s, "SCU", ""))
            .collect();
        let scp: Vec<(&str, &str, &str)> = TEN_STORAGE_CLASSES
            .iter()
            .map(|s| (*s, "SCP", ""))
            .collect();
        [
            statement(
                "PYNETDICOM_SCU",
                "PYSCU",
                &format!("initiator = true\nmax_presentation_contexts = {max}"),
                &scu,
            ),
            statement(
                "DCMTK_STORESCP",
                "STORESCP",
                &format!("acceptor = true\nmax_presentation_contexts = {max}"),
                &scp,
            ),
        ]
    };
    let findings = neg.findings(&capture, &stmts(8));
    let f = only(&findings, "PYNETDICOM_SCU", "too-many-contexts");
    assert_eq!(text(&f, "claim"), "max_presentation_contexts = 8");
    assert_eq!(text(&f, "observed"), "proposed 10 presentation contexts");
    assert_eq!(f["evidence"]["from"], "requestor");
    let f = only(&findings, "DCMTK_STORESCP", "too-many-contexts");
    assert_eq!(text(&f, "observed"), "accepted 10 presentation contexts");
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(&capture, &stmts(10));
}
