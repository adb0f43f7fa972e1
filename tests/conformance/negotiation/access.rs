use super::*;

// -------------------------------------------------------------------------------------
// Access and association limits (dcmqrscp)

/// dcmqrscp whose AETable admits only ALLOWED: it rejects INTRUDER (calling AE not
/// recognized) and the called title OTHERAE it does not serve. A statement that allows
/// INTRUDER, and names OTHERAE as one of its AEs, reports
/// association-rejected-for-allowed-ae for both; the statement of its real access list,
/// nothing (and no calling-ae-not-allowed-accepted for the accepted ALLOWED).
#[test]
fn dcmqrscp_rejects_a_calling_ae_its_statement_allows() {
    let Some(neg) = Neg::new("rejected-allowed", &["dcmqrscp", "echoscu"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-restricted", Some("ALLOWED"), 16);
    let cap = Capture::start("rejected-allowed", &[port], neg.path());
    let ok = echoscu(neg.path(), port, "ALLOWED", "QRSCP");
    assert!(
        ok.status.success(),
        "ALLOWED was refused:\n{}\n{}",
        ok.text(),
        qr.output()
    );
    let refused = echoscu(neg.path(), port, "INTRUDER", "QRSCP");
    assert!(
        !refused.status.success(),
        "INTRUDER was accepted:\n{}",
        refused.text()
    );
    let wrong_called = echoscu(neg.path(), port, "ALLOWED", "OTHERAE");
    assert!(!wrong_called.status.success(), "{}", wrong_called.text());
    let capture = cap.finish();
    drop(qr);

    let mut allows_intruder =
        qrscp_statement("accept_calling_ae_titles = [\"ALLOWED\", \"INTRUDER\"]");
    allows_intruder.push_str("[[ae]]\ntitle = \"OTHERAE\"\nacceptor = true\n");
    let findings = neg.findings(&capture, &[&allows_intruder]);
    let rejected = with(
        &findings,
        "association-rejected-for-allowed-ae",
        "DCMTK_DCMQRSCP",
    );
    assert_eq!(rejected.len(), 2, "{}", dump(&findings));
    assert_eq!(findings.len(), 2, "{}", dump(&findings));
    let calling = rejected
        .iter()
        .find(|f| f["ae"] == "QRSCP")
        .expect("QRSCP finding");
    assert!(
        text(calling, "claim").contains("accept_calling_ae_titles = [\"ALLOWED\", \"INTRUDER\"]"),
        "{calling}"
    );
    // dcmqrscp refuses a title missing from its AETable with reason 7 (called AE title
    // not recognized), not 3.
    assert!(
        text(calling, "observed").starts_with("rejected called AE QRSCP (calling AE INTRUDER)"),
        "{calling}"
    );
    let called = rejected
        .iter()
        .find(|f| f["ae"] == "OTHERAE")
        .expect("OTHERAE finding");
    assert!(
        text(called, "observed").starts_with("rejected called AE OTHERAE"),
        "{called}"
    );

    let real = qrscp_statement("accept_calling_ae_titles = [\"ALLOWED\"]");
    neg.assert_clean(&capture, &[&real]);
}

/// A pynetdicom SCP that requires the calling AE title ALLOWED rejects INTRUDER with
/// reason 3 (calling AE title not recognized): a statement that allows INTRUDER reports
/// association-rejected-for-allowed-ae; its real allow-list, nothing.
#[test]
fn pynetdicom_rejects_a_calling_ae_its_statement_allows() {
    let Some(neg) = Neg::new("rejected-allowed-py", &[]) else {
        return;
    };
    let scp_spec = json!({
        "ae": "PYSCP", "contexts": ["Verification"], "require_calling": ["ALLOWED"],
    });
    let capture = neg.with_pyscp("rejected-allowed-py", scp_spec, |port| {
        for (calling, outcome) in [("ALLOWED", "established 0"), ("INTRUDER", "rejected 0")] {
            let out = neg.scu(json!({
                "port": port, "called": "PYSCP", "calling": calling,
                "contexts": [["Verification", UNCOMPRESSED_UIDS]],
            }));
            assert!(out.stdout.contains(outcome), "{calling}: {}", out.text());
        }
    });

    let stmt = |allowed: &str| {
        statement(
            "PYNETDICOM_SCP",
            "PYSCP",
            &format!("acceptor = true\naccept_calling_ae_titles = {allowed}"),
            &[("Verification", "SCP", "")],
        )
    };
    let findings = neg.findings(&capture, &[&stmt(r#"["ALLOWED", "INTRUDER"]"#)]);
    let f = only(
        &findings,
        "PYNETDICOM_SCP",
        "association-rejected-for-allowed-ae",
    );
    assert_eq!(
        text(&f, "claim"),
        "accept_calling_ae_titles = [\"ALLOWED\", \"INTRUDER\"]"
    );
    assert!(
        text(&f, "observed").starts_with("rejected calling AE INTRUDER"),
        "{f}"
    );
    assert_eq!(f["evidence"]["from"], "acceptor");

    neg.assert_clean(&capture, &[&stmt(r#"["ALLOWED"]"#)]);
}

/// dcmqrscp with AETable peers ANY accepts INTRUDER although the statement allows only
/// ALLOWED: calling-ae-not-allowed-accepted. dcmqrscp configured as its statement says
/// (only ALLOWED) raises nothing for the same traffic.
#[test]
fn dcmqrscp_accepts_a_calling_ae_its_statement_does_not_allow() {
    let Some(neg) = Neg::new("not-allowed-accepted", &["dcmqrscp", "echoscu"]) else {
        return;
    };
    let stmt = qrscp_statement("accept_calling_ae_titles = [\"ALLOWED\"]");
    let run_against = |name: &str, peer: Option<&str>| {
        let (qr, port) = dcmqrscp(neg.path(), name, peer, 16);
        let cap = Capture::start(name, &[port], neg.path());
        let ok = echoscu(neg.path(), port, "ALLOWED", "QRSCP");
        assert!(ok.status.success(), "{}", ok.text());
        let intruder = echoscu(neg.path(), port, "INTRUDER", "QRSCP");
        assert_eq!(
            intruder.status.success(),
            peer.is_none(),
            "{}",
            intruder.text()
        );
        let capture = cap.finish();
        drop(qr);
        neg.findings(&capture, &[&stmt])
    };

    let findings = run_against("dcmqrscp-any", None);
    let f = only(
        &findings,
        "DCMTK_DCMQRSCP",
        "calling-ae-not-allowed-accepted",
    );
    assert_eq!(
        text(&f, "claim"),
        "accept_calling_ae_titles = [\"ALLOWED\"]"
    );
    assert_eq!(
        text(&f, "observed"),
        "accepted an association from calling AE INTRUDER"
    );
    assert_eq!(f["severity"], "error");

    clean(
        &run_against("dcmqrscp-listed", Some("ALLOWED")),
        "DCMTK_DCMQRSCP",
    );
}

/// dcmqrscp with MaxAssociations = 1 rejects a second association (local limit
/// exceeded) while a pynetdicom SCU holds the first: a statement claiming 4 reports
/// local-limit-below-claim; one claiming its real limit of 1, nothing.
#[test]
fn dcmqrscp_rejects_for_local_limit_below_its_claimed_maximum() {
    let Some(neg) = Neg::new("local-limit", &["dcmqrscp", "echoscu"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-one", None, 1);
    let cap = Capture::start("local-limit", &[port], neg.path());
    let mut holder = neg.scu_background(json!({
        "port": port, "called": "QRSCP", "calling": "HOLDER",
        "contexts": [["Verification", UNCOMPRESSED_UIDS]], "hold": 4,
    }));
    assert!(
        wait_until(T, || holder.stdout().contains("held")),
        "{}",
        holder.output()
    );
    assert!(
        holder.stdout().contains("established 0"),
        "{}",
        holder.output()
    );
    let second = echoscu(neg.path(), port, "SECOND", "QRSCP");
    assert!(
        !second.status.success(),
        "second association accepted:\n{}",
        second.text()
    );
    assert!(holder.wait_timeout(T).is_some(), "{}", holder.output());
    let capture = cap.finish();
    drop(qr);

    let findings = neg.findings(
        &capture,
        &[&qrscp_statement("max_associations = { acceptor = 4 }")],
    );
    let f = only(&findings, "DCMTK_DCMQRSCP", "local-limit-below-claim");
    assert_eq!(text(&f, "claim"), "max_associations.acceptor = 4");
    assert_eq!(
        text(&f, "observed"),
        "rejected with local-limit-exceeded while 1 association(s) were open to it in the traffic seen"
    );

    neg.assert_clean(
        &capture,
        &[&qrscp_statement("max_associations = { acceptor = 1 }")],
    );
}

/// A pynetdicom SCU holds three associations to dcmqrscp at once: statements claiming
/// two (initiator and acceptor) report max-associations-exceeded for each; claims of
/// three, nothing.
#[test]
fn three_simultaneous_associations_exceed_a_claim_of_two() {
    let Some(neg) = Neg::new("max-assoc", &["dcmqrscp"]) else {
        return;
    };
    let (qr, port) = dcmqrscp(neg.path(), "dcmqrscp-many", None, 16);
    let cap = Capture::start("max-assoc", &[port], neg.path());
    let out = neg.scu(json!({
        "port": port, "called": "QRSCP", "calling": "PYSCU",
        "contexts": [["Verification", UNCOMPRESSED_UIDS]], "count": 3, "hold": 1,
    }));
    assert!(out.stdout.contains("established 2"), "{}", out.text());
    let capture = cap.finish();
    drop(qr);

    let stmts = |n: u32| {
        [
            statement(
                "PYNETDICOM_SCU",
                "PYSCU",
                &format!("initiator = true\nmax_associations = {{ initiator = {n} }}"),
                &[("Verification", "SCU", "")],
            ),
            qrscp_statement(&format!("max_associations = {{ acceptor = {n} }}")),
        ]
    };
    let findings = neg.findings(&capture, &stmts(2));
    let f = only(&findings, "PYNETDICOM_SCU", "max-associations-exceeded");
    assert_eq!(text(&f, "claim"), "max_associations.initiator = 2");
    assert_eq!(
        text(&f, "observed"),
        "3 simultaneous associations initiated"
    );
    let f = only(&findings, "DCMTK_DCMQRSCP", "max-associations-exceeded");
    assert_eq!(text(&f, "claim"), "max_associations.acceptor = 2");
    assert_eq!(text(&f, "observed"), "3 simultaneous associations accepted");

    neg.assert_clean(&capture, &stmts(3));
}

// -------------------------------------------------------------------------------------
// TLS

/// storescu -> storescp in plain DICOM against statements that require TLS:
/// tls-claimed-plaintext-seen for both. The same peers with +tls (a throwaway
/// certificate) against the same statements: nothing.
#[test]
fn plain_dicom_to_and_from_devices_that_require_tls() {
    let Some(neg) = Neg::new("tls-plain", &["storescp", "storescu", "openssl"]) else {
        return;
    };
    let dir = neg.path();
    // A throwaway PKI: both sides use the server certificate (it is also a client
    // certificate) and trust its CA.
    let pki = Pki::new(dir);
    let tls: Vec<String> = vec![
        "+tls".into(),
        pki.path("leaf.key"),
        pki.path("server.pem"),
        "+cf".into(),
        pki.path("ca.pem"),
    ];
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let [scu, scp] = dcmtk_pair(
        "initiator = true\ntls = { required = true }",
        "acceptor = true\ntls = { required = true }",
    );
    let run_with = |name: &str, args: &[&str]| {
        let (capture, port) = neg
            .scene
            .with_storescp(name, args, |port| neg.store_ct(port, args));
        (neg.findings(&capture, &[&scu, &scp]), capture, port)
    };

    let (findings, _, _) = run_with("tls-plain", &[]);
    for device in ["DCMTK_STORESCU", "DCMTK_STORESCP"] {
        let f = only(&findings, device, "tls-claimed-plaintext-seen");
        assert_eq!(text(&f, "claim"), "tls.required = true");
        assert_eq!(
            text(&f, "observed"),
            "plain DICOM A-ASSOCIATE-RQ STORESCU -> STORESCP (not TLS)"
        );
        assert_eq!(f["severity"], "error");
    }

    // storescu succeeded over TLS (asserted in run_with); nothing plain was seen.
    let (findings, capture, port) = run_with("tls-real", &tls);
    assert!(findings.is_empty(), "{}", dump(&findings));
    // The analyzer saw the TLS connection and recognised it as TLS (told the port).
    let sessions = run_ok(
        "dicomtap-analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "analyze",
                "--json",
                "--port",
                &port.to_string(),
                capture.to_str().unwrap(),
            ],
        ),
        neg.path(),
        T,
    )
    .stdout;
    let encrypted: Vec<Value> = sessions
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["session"]["encrypted"].is_string())
        .collect();
    assert_eq!(encrypted.len(), 1, "{sessions}");
}
