use super::*;

/// SOP class extended negotiation (0x56) for CT storage: the SCU asks for element
/// coercion 2, the SCP answers level of support 3; statements claiming coercion 0 and
/// level 2 report extended-negotiation-differs for each; the real values, nothing.
#[test]
fn storage_extended_negotiation_differs_from_the_statement() {
    let Some(neg) = Neg::new("ext-neg", &[]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "PYSCP",
        "contexts": ["Verification", "CTImageStorage"],
        "ext_reply": {"CTImageStorage": "030000000100"},
    });
    let capture = neg.with_pyscp("ext-neg", scp_spec, |port| {
        neg.scu_echoes(json!({
            "port": port, "called": "PYSCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS], ["CTImageStorage", UNCOMPRESSED_UIDS]],
            "ext": [["CTImageStorage", "020000000200"]],
        }));
    });

    let stmts = |scu_ext: &str, scp_ext: &str| {
        let storage = |ext: &str| format!("extended_negotiation = {{ storage = {{ {ext} }} }}");
        let (scu_ct, scp_ct) = (storage(scu_ext), storage(scp_ext));
        py_pair(
            (
                "",
                &[
                    ("Verification", "SCU", ""),
                    ("CTImageStorage", "SCU", &scu_ct),
                ],
            ),
            (
                "",
                &[
                    ("Verification", "SCP", ""),
                    ("CTImageStorage", "SCP", &scp_ct),
                ],
            ),
        )
    };
    let findings = neg.findings(
        &capture,
        &stmts(
            "level_of_support = 2, element_coercion = 0",
            "level_of_support = 2, element_coercion = 1",
        ),
    );
    let f = only(&findings, "PYNETDICOM_SCU", "extended-negotiation-differs");
    assert!(
        text(&f, "claim").starts_with("extended_negotiation for CTImageStorage"),
        "{f}"
    );
    assert_eq!(
        text(&f, "observed"),
        "proposed element_coercion 2 (claimed 0) for CTImageStorage"
    );
    let f = only(&findings, "PYNETDICOM_SCP", "extended-negotiation-differs");
    assert_eq!(
        text(&f, "observed"),
        "answered level_of_support 3 (claimed 2) for CTImageStorage"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(
        &capture,
        &stmts(
            "level_of_support = 2, digital_signature = 0, element_coercion = 2",
            "level_of_support = 3, digital_signature = 0, element_coercion = 1",
        ),
    );
}

/// SOP class common extended negotiation (0x57): a pynetdicom SCU sends, for Enhanced
/// CT, the Storage Service Class and CT Image Storage as related general SOP class, to
/// storescp. Claims that differ (another related class; none at all) report
/// extended-negotiation-differs; the claim of what it sends, nothing.
#[test]
fn common_extended_negotiation_differs_from_the_statement() {
    let Some(neg) = Neg::new("common-ext-neg", &["storescp"]) else {
        return;
    };
    let (capture, _) = neg.scene.with_storescp("common-ext-neg", &[], |port| {
        neg.scu(json!({
            "port": port, "called": "STORESCP", "calling": "PYSCU",
            "contexts": [["EnhancedCTImageStorage", UNCOMPRESSED_UIDS]],
            "common": [["EnhancedCTImageStorage", "1.2.840.10008.4.2", ["CTImageStorage"]]],
        }));
    });

    let scu = |extra: &str| {
        statement(
            "PYNETDICOM_SCU",
            "PYSCU",
            "initiator = true",
            &[("EnhancedCTImageStorage", "SCU", extra)],
        )
    };
    let findings = neg.findings(
        &capture,
        &[&scu(
            "common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", related_general_sop_classes = [\"CTImageStorage\", \"MRImageStorage\"] }",
        )],
    );
    let f = only(&findings, "PYNETDICOM_SCU", "extended-negotiation-differs");
    assert_eq!(
        text(&f, "claim"),
        "common_extended_negotiation for EnhancedCTImageStorage = { service_class = 1.2.840.10008.4.2, related_general_sop_classes = [CTImageStorage, MRImageStorage] }"
    );
    assert_eq!(
        text(&f, "observed"),
        "proposed common extended negotiation for EnhancedCTImageStorage with claimed related general SOP classes [MRImageStorage] not sent"
    );
    assert_eq!(f["evidence"]["from"], "requestor");

    let findings = neg.findings(&capture, &[&scu("")]);
    let f = only(&findings, "PYNETDICOM_SCU", "extended-negotiation-differs");
    assert_eq!(
        text(&f, "observed"),
        "proposed common extended negotiation for EnhancedCTImageStorage: service class 1.2.840.10008.4.2, related general SOP classes [CTImageStorage]"
    );

    let findings = neg.findings(
        &capture,
        &[&scu(
            "common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", related_general_sop_classes = [\"CTImageStorage\"] }",
        )],
    );
    clean(&findings, "PYNETDICOM_SCU");
    // `statement infer` writes the item it saw, and that statement raises nothing.
    let inferred = run_ok(
        "dicomtap-infer",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "statement",
                "infer",
                "--ae",
                "PYSCU",
                "--device",
                "PYNETDICOM_SCU",
                capture.to_str().unwrap(),
            ],
        ),
        neg.path(),
        T,
    )
    .stdout;
    assert!(
        inferred.contains(
            "common_extended_negotiation = { service_class = \"1.2.840.10008.4.2\", related_general_sop_classes = [\"CTImageStorage\"] }"
        ),
        "{inferred}"
    );
    neg.assert_clean(&capture, &[&inferred]);
}

/// The pynetdicom SCU proposes an asynchronous operations window of 5/5 and the
/// pynetdicom SCP answers 1/1: a statement without async_window for the SCU, and one
/// claiming 4/4 for the SCP, report async-window-differs; the real windows, nothing.
#[test]
fn asynchronous_operations_window_differs_from_the_statement() {
    let Some(neg) = Neg::new("async-window", &[]) else {
        return;
    };
    let scp_spec = json!({"ae": "PYSCP", "contexts": ["Verification"], "async": true});
    let capture = neg.with_pyscp("async-window", scp_spec, |port| {
        neg.scu_echoes(json!({
            "port": port, "called": "PYSCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS]],
            "async": [5, 5],
        }));
    });

    let stmts = |scu_ae: &str, scp_ae: &str| {
        py_pair(
            (scu_ae, &[("Verification", "SCU", "")]),
            (scp_ae, &[("Verification", "SCP", "")]),
        )
    };
    let findings = neg.findings(
        &capture,
        &stmts("", "async_window = { invoked = 4, performed = 4 }"),
    );
    let f = only(&findings, "PYNETDICOM_SCU", "async-window-differs");
    assert_eq!(text(&f, "claim"), "async_window: not negotiated");
    assert_eq!(text(&f, "observed"), "proposed invoked = 5, performed = 5");
    let f = only(&findings, "PYNETDICOM_SCP", "async-window-differs");
    assert_eq!(
        text(&f, "claim"),
        "async_window = { invoked = 4, performed = 4 }"
    );
    assert_eq!(
        text(&f, "observed"),
        "answered invoked = 1, performed = 1 to a proposal of invoked = 5, performed = 5"
    );

    neg.assert_clean(
        &capture,
        &stmts(
            "async_window = { invoked = 5, performed = 5 }",
            "async_window = { invoked = 1, performed = 1 }",
        ),
    );
}

/// storescu --user/--password (user identity type 2) to a pynetdicom SCP, then a
/// pynetdicom SCU with a JWT (type 5, positive response requested) that the SCP grants
/// and answers: a statement listing only "username" for storescu, and none for the SCP,
/// report user-identity-differs for each; the real types, nothing.
///
/// (pynetdicom answers no User Identity response for types 1 and 2 even when a positive
/// response is requested, which storescu --pos-response then refuses; hence the JWT.)
#[test]
fn user_identity_sent_and_answered_differs_from_the_statement() {
    let Some(neg) = Neg::new("user-identity", &["storescu"]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "STORESCP", "contexts": ["Verification", "CTImageStorage"], "user_id": true,
    });
    let capture = neg.with_pyscp("user-identity", scp_spec, |port| {
        neg.store_ct(port, &["--user", "alice", "--password", "secret"]);
        neg.scu_echoes(json!({
            "port": port, "called": "STORESCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS]],
            "user": [5, "eyJhbGciOiJub25lIn0.e30.", "", true],
        }));
    });

    let stmts = |scu_types: &str, scp_types: &str| {
        [
            statement(
                "DCMTK_STORESCU",
                "STORESCU",
                &format!("initiator = true\n{scu_types}"),
                &[("CTImageStorage", "SCU", "")],
            ),
            statement(
                "PYNETDICOM_SCU",
                "PYSCU",
                "initiator = true\nuser_identity = [\"jwt\"]",
                &[("Verification", "SCU", "")],
            ),
            statement(
                "PYNETDICOM_SCP",
                "STORESCP",
                &format!("acceptor = true\n{scp_types}"),
                &[("Verification", "SCP", ""), ("CTImageStorage", "SCP", "")],
            ),
        ]
    };
    let findings = neg.findings(&capture, &stmts("user_identity = [\"username\"]", ""));
    let f = only(&findings, "DCMTK_STORESCU", "user-identity-differs");
    assert_eq!(text(&f, "claim"), "user_identity = [username]");
    assert_eq!(
        text(&f, "observed"),
        "sent user identity of type 2 (username_passcode)"
    );
    let f = only(&findings, "PYNETDICOM_SCP", "user-identity-differs");
    assert_eq!(text(&f, "claim"), "user_identity: none");
    assert_eq!(text(&f, "observed"), "sent a user identity server response");
    clean(&findings, "PYNETDICOM_SCU");
    // The password is never in a finding.
    assert!(!findings.iter().any(|f| f.to_string().contains("secret")));

    neg.assert_clean(
        &capture,
        &stmts(
            "user_identity = [\"username_passcode\"]",
            "user_identity = [\"username_passcode\", \"jwt\"]",
        ),
    );
}

/// storescu --user/--password --pos-response to a pynetdicom SCP that grants the
/// identity: pynetdicom accepts the association without the User Identity response
/// (it answers only Kerberos, SAML and JWT), and storescu gives up. A statement that
/// says the SCP handles username_passcode reports user-identity-differs; one listing
/// the type it does answer (jwt), nothing.
#[test]
fn acceptor_that_does_not_answer_a_requested_positive_response() {
    let Some(neg) = Neg::new("user-identity-no-response", &["storescu"]) else {
        return;
    };
    let scp_spec = json!({"ae": "STORESCP", "contexts": ["CTImageStorage"], "user_id": true});
    let capture = neg.with_pyscp("user-identity-no-response", scp_spec, |port| {
        let out = storescu(
            &neg,
            port,
            "STORESCU",
            &[
                "-R",
                "--user",
                "alice",
                "--password",
                "secret",
                "--pos-response",
            ],
            &[neg.file("CT_small.dcm")],
        );
        assert!(
            !out.status.success()
                && out
                    .stderr
                    .contains("Positive response requested but none received"),
            "{}",
            out.text()
        );
    });

    let stmts = |scp_types: &str| {
        [
            statement(
                "DCMTK_STORESCU",
                "STORESCU",
                "initiator = true\nuser_identity = [\"username_passcode\"]",
                &[("CTImageStorage", "SCU", "")],
            ),
            statement(
                "PYNETDICOM_SCP",
                "STORESCP",
                &format!("acceptor = true\nuser_identity = {scp_types}"),
                &[("CTImageStorage", "SCP", "")],
            ),
        ]
    };
    let findings = neg.findings(&capture, &stmts(r#"["username_passcode", "jwt"]"#));
    let f = only(&findings, "PYNETDICOM_SCP", "user-identity-differs");
    assert_eq!(
        text(&f, "claim"),
        "user_identity = [username_passcode, jwt]"
    );
    assert_eq!(
        text(&f, "observed"),
        "accepted user identity of type 2 (username_passcode) with a positive response requested, without a response"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");
    clean(&findings, "DCMTK_STORESCU");

    neg.assert_clean(&capture, &stmts(r#"["jwt"]"#));
}
