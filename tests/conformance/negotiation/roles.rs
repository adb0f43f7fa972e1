use super::*;

// -------------------------------------------------------------------------------------
// Roles and addresses

/// storescu -> storescp against statements that say storescu only accepts and storescp
/// only initiates: association-role-not-claimed for each. The real roles: nothing.
#[test]
fn initiator_and_acceptor_roles_against_the_statement() {
    let Some(neg) = Neg::new("assoc-role", &["storescp", "storescu"]) else {
        return;
    };
    let (capture, _) = neg
        .scene
        .with_storescp("assoc-role", &[], |port| neg.store_ct(port, &[]));

    let findings = neg.findings(
        &capture,
        &dcmtk_pair(
            "initiator = false\nacceptor = true",
            "initiator = true\nacceptor = false",
        ),
    );
    let f = only(&findings, "DCMTK_STORESCU", "association-role-not-claimed");
    assert_eq!(text(&f, "claim"), "initiator = false");
    assert_eq!(text(&f, "observed"), "initiated an association to STORESCP");
    let f = only(&findings, "DCMTK_STORESCP", "association-role-not-claimed");
    assert_eq!(text(&f, "claim"), "acceptor = false");
    assert_eq!(
        text(&f, "observed"),
        "was called by STORESCU as association acceptor"
    );

    neg.assert_clean(
        &capture,
        &dcmtk_pair(
            "initiator = true\nacceptor = false",
            "initiator = false\nacceptor = true",
        ),
    );
}

/// storescu from 127.0.0.1 and storescp on its port, against statements with another
/// host and another port: ae-address-not-claimed. The real address and port: nothing.
#[test]
fn ae_titles_used_from_an_address_and_port_the_statement_does_not_list() {
    let Some(neg) = Neg::new("ae-address", &["storescp", "storescu"]) else {
        return;
    };
    let (capture, port) = neg
        .scene
        .with_storescp("ae-address", &[], |port| neg.store_ct(port, &[]));
    let other = if port == 65535 { port - 1 } else { port + 1 };

    let stmts = |hosts: &str, port: u16| {
        dcmtk_pair(
            &format!("initiator = true\nhosts = [\"{hosts}\"]"),
            &format!("acceptor = true\nhosts = [\"127.0.0.1\"]\nport = {port}"),
        )
    };
    let findings = neg.findings(&capture, &stmts("192.0.2.7", other));
    let f = only(&findings, "DCMTK_STORESCU", "ae-address-not-claimed");
    assert_eq!(text(&f, "claim"), "hosts = [\"192.0.2.7\"]");
    assert_eq!(
        text(&f, "observed"),
        "AE title STORESCU used by a requestor at 127.0.0.1"
    );
    let f = only(&findings, "DCMTK_STORESCP", "ae-address-not-claimed");
    assert_eq!(text(&f, "claim"), format!("port = {other}"));
    assert_eq!(
        text(&f, "observed"),
        format!(
            "AE title STORESCP called on port {port}; if that is where this installation \
             listens, set port = {port} for AE STORESCP in its statement"
        )
    );

    neg.assert_clean(&capture, &stmts("127.0.0.1", port));
}

// -------------------------------------------------------------------------------------
// User information items

/// pynetdicom SCU and SCP with SCP/SCU role selection for CT (the SCU asks for both
/// roles, the SCP grants both): statements that claim only the SCU role in role
/// selection report role-selection-differs for each side; the real selection, nothing.
#[test]
fn role_selection_negotiated_differs_from_the_statement() {
    let Some(neg) = Neg::new("role-selection", &[]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "PYSCP",
        "contexts": ["Verification", "CTImageStorage"],
        "roles": [["CTImageStorage", true, true]],
    });
    let capture = neg.with_pyscp("role-selection", scp_spec, |port| {
        neg.scu_echoes(json!({
            "port": port, "called": "PYSCP", "calling": "PYSCU",
            "contexts": [["Verification", UNCOMPRESSED_UIDS], ["CTImageStorage", UNCOMPRESSED_UIDS]],
            "roles": [["CTImageStorage", true, true]],
        }));
    });

    let stmts = |scp_role: bool| {
        let rs = format!("role_selection = {{ scu = true, scp = {scp_role} }}");
        py_pair(
            (
                "",
                &[
                    ("Verification", "SCU", ""),
                    ("CTImageStorage", "SCU", &rs),
                    ("CTImageStorage", "SCP", ""),
                ],
            ),
            (
                "",
                &[
                    ("Verification", "SCP", ""),
                    ("CTImageStorage", "SCP", &rs),
                    ("CTImageStorage", "SCU", ""),
                ],
            ),
        )
    };
    let findings = neg.findings(&capture, &stmts(false));
    let f = only(&findings, "PYNETDICOM_SCU", "role-selection-differs");
    assert_eq!(
        text(&f, "claim"),
        "role_selection for CTImageStorage = { scu = true, scp = false }"
    );
    assert_eq!(
        text(&f, "observed"),
        "proposed role selection scu = true, scp = true for CTImageStorage"
    );
    let f = only(&findings, "PYNETDICOM_SCP", "role-selection-differs");
    assert_eq!(
        text(&f, "observed"),
        "accepted role selection scu = true, scp = true for CTImageStorage"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(&capture, &stmts(true));
}

/// getscu proposes C-GET with SCP/SCU role selection (SCP role) for every storage SOP
/// class it can receive. A statement whose CT capability claims role selection with
/// both roles reports role-selection-differs for CT Image Storage; one claiming the SCP
/// role only, nothing for CT. (getscu proposes about 120 storage classes; the statement
/// here describes the two the test is about, so only CT's findings are looked at.)
#[test]
fn getscu_role_selection_differs_from_the_statement() {
    let Some(neg) = Neg::new("getscu-roles", &["dcmqrscp", "getscu"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-get", None, 16);
    let cap = Capture::start("getscu-roles", &[port], neg.path());
    let out = run(
        "getscu",
        command(
            "getscu",
            &[
                "-aet",
                "GETSCU",
                "-aec",
                "QRSCP",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                "StudyInstanceUID=1.2.3.4",
                "127.0.0.1",
                &port.to_string(),
            ],
        ),
        neg.path(),
        T,
    );
    assert!(out.status.success(), "{}", out.text());
    let capture = cap.finish();
    drop(qr);

    let for_ct = |scu: bool| {
        let stmt = statement(
            "DCMTK_GETSCU",
            "GETSCU",
            "initiator = true",
            &[
                ("PatientRootQueryRetrieveInformationModelGet", "SCU", ""),
                (
                    "CTImageStorage",
                    "SCP",
                    &format!("role_selection = {{ scu = {scu}, scp = true }}"),
                ),
            ],
        );
        let findings = neg.findings(&capture, &[&stmt]);
        let ct: Vec<Value> = with(&findings, "role-selection-differs", "DCMTK_GETSCU")
            .into_iter()
            .filter(|f| text(f, "observed").ends_with(" for CTImageStorage"))
            .collect();
        // The other storage classes getscu proposes are not in this statement.
        assert!(
            with(&findings, "role-selection-differs", "DCMTK_GETSCU").len() > 50,
            "{}",
            dump(&findings)
        );
        ct
    };
    let ct = for_ct(true);
    assert_eq!(ct.len(), 1, "{}", dump(&ct));
    assert_eq!(
        text(&ct[0], "claim"),
        "role_selection for CTImageStorage = { scu = true, scp = true }"
    );
    assert_eq!(
        text(&ct[0], "observed"),
        "proposed role selection scu = false, scp = true for CTImageStorage"
    );
    assert_eq!(ct[0]["evidence"]["from"], "requestor");

    let ct = for_ct(false);
    assert!(ct.is_empty(), "{}", dump(&ct));
}
