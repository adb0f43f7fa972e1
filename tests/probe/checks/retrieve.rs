use super::*;

#[test]
fn probe_echo_store_find_move_against_orthanc() {
    if !require("probe_echo_store_find_move_against_orthanc", &["Orthanc"]) {
        return;
    }
    let scene = Scene::new("orthanc");
    let (port, move_port) = (free_port(), free_port());
    let _orthanc = orthanc(scene.path(), port, move_port, serde_json::json!({}));
    let listen = format!("127.0.0.1:{move_port}");
    let (code, report) = scene.probe_ae(
        "probe-orthanc",
        ("ORTHANC", port),
        None,
        &[
            "--listen",
            &listen,
            "--move-ae",
            "DICOMTAP",
            "echo",
            "store",
            "find-move",
        ],
    );
    assert_verdicts(&report, code, 0, &["echo", "store", "find-move"], "pass");
    let summary = summary(&report, "find-move");
    assert!(
        summary.contains("C-MOVE delivered it") && summary.contains("C-GET returned it"),
        "{summary}"
    );
}

/// Orthanc with DICOM TLS only (as SCP and towards the probe's move destination): the
/// probe talks TLS to it and its own listener receives the C-MOVE sub-operations and the
/// Storage Commitment report over TLS, verifying Orthanc's client certificate; with a plain-TCP listener the move fails and
/// says why.
#[test]
fn probe_find_move_to_a_tls_listener_from_tls_only_orthanc() {
    if !require(
        "probe_find_move_to_a_tls_listener_from_tls_only_orthanc",
        &["Orthanc", "openssl"],
    ) {
        return;
    }
    let scene = Scene::new("orthanc-tls");
    let pki = Pki::new(scene.path());
    // Orthanc may run as its own user: it must read the key and the certificates.
    set_mode(&pki.dir, 0o755);
    for f in ["leaf.key", "server.pem", "ca.pem"] {
        set_mode(&pki.dir.join(f), 0o644);
    }
    let (ca, server, client, key) = (
        pki.path("ca.pem"),
        pki.path("server.pem"),
        pki.path("client.pem"),
        pki.path("leaf.key"),
    );
    let (port, move_port) = (free_port(), free_port());
    let _orthanc = orthanc(
        scene.path(),
        port,
        move_port,
        serde_json::json!({
            "DicomTlsEnabled": true,
            "DicomTlsCertificate": server,
            "DicomTlsPrivateKey": key,
            "DicomTlsTrustedCertificates": ca,
            "DicomTlsRemoteCertificateRequired": true,
            "DicomModalities": {
                "probe": {
                    "AET": "DICOMTAP",
                    "Host": "127.0.0.1",
                    "Port": move_port,
                    "UseDicomTls": true
                }
            },
        }),
    );
    let listen = format!("127.0.0.1:{move_port}");
    let common = [
        "--tls",
        "--tls-ca",
        ca.as_str(),
        "--tls-cert",
        client.as_str(),
        "--tls-key",
        key.as_str(),
        "--listen",
        listen.as_str(),
        "--move-ae",
        "DICOMTAP",
    ];
    let listener_tls = [
        "--listen-tls-cert",
        server.as_str(),
        "--listen-tls-key",
        key.as_str(),
        "--listen-tls-ca",
        ca.as_str(),
    ];
    let checks = ["echo", "store", "find-move"];
    let (code, report) = scene.probe_ae(
        "probe-orthanc-tls",
        ("ORTHANC", port),
        None,
        &[&common[..], &listener_tls, &checks, &["commitment"]].concat(),
    );
    assert_verdicts(&report, code, 0, &checks, "pass");
    // Orthanc sends the Storage Commitment report on a new association, over TLS too.
    assert_eq!(verdict(&report, "commitment"), "pass", "{report:#}");
    let commitment = result(&report, "commitment")["details"].to_string();
    assert!(
        commitment.contains("on a new association")
            && commitment.contains("the report's association came over TLS (TLSv1."),
        "{commitment}"
    );
    assert!(
        report["tls"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{report:#}"
    );
    let text = summary(&report, "find-move");
    assert!(text.contains("C-MOVE delivered it"), "{report:#}");
    let details: Vec<&str> = result(&report, "find-move")["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Every moved instance came over TLS, none over plain TCP, no handshake failed.
    assert!(
        details
            .iter()
            .any(|d| d.contains("over TLS (TLSv1.") && d.contains("GCM")),
        "{details:?}"
    );
    assert!(
        !details
            .iter()
            .any(|d| d.contains("plain TCP") || d.contains("handshake")),
        "{details:?}"
    );

    // The same Orthanc, but the probe's listener in plain TCP: Orthanc's sub-operation
    // association opens with a TLS ClientHello, which the listener refuses; the move fails.
    let (code, report) = scene.probe_ae(
        "probe-orthanc-tls-plain-listener",
        ("ORTHANC", port),
        None,
        &[&common[..], &checks].concat(),
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "store"), "pass", "{report:#}");
    assert_eq!(verdict(&report, "find-move"), "fail", "{report:#}");
    let text = summary(&report, "find-move");
    assert!(
        text.contains("C-MOVE") && !text.contains("C-MOVE delivered it"),
        "{text}"
    );
    assert!(
        text.contains("started a TLS handshake") && text.contains("plain TCP"),
        "{report:#}"
    );

    // A TLS listener trusting only another CA: Orthanc's certificate does not verify, the
    // handshake fails, is counted, and the move fails.
    let rogue_ca = pki.path("rogue-ca.pem");
    let (code, report) = scene.probe_ae(
        "probe-orthanc-tls-untrusted",
        ("ORTHANC", port),
        None,
        &[
            &common[..],
            &listener_tls[..4],
            &["--listen-tls-ca", rogue_ca.as_str()],
            &checks,
        ]
        .concat(),
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "find-move"), "fail", "{report:#}");
    let details = result(&report, "find-move")["details"].to_string();
    assert!(
        details.contains("refused at the TLS handshake")
            && details.contains("invalid peer certificate")
            && !details.contains("over TLS ("),
        "{report:#}"
    );
}

#[test]
fn probe_store_find_move_matching_against_dcmqrscp() {
    if !require(
        "probe_store_find_move_matching_against_dcmqrscp",
        &["dcmqrscp"],
    ) {
        return;
    }
    let scene = Scene::new("dcmqrscp");
    let (port, move_port) = (free_port(), free_port());
    let _qr = scene.dcmqrscp(port, 16, Some(move_port), &[]);
    let listen = format!("127.0.0.1:{move_port}");
    // Claims UTF-8: the person-name component-group queries are then required.
    let (code, report) = scene.probe_ae(
        "probe-dcmqrscp",
        ("DCMQRSCP", port),
        Some(&acceptor_statement(
            "DCMQRSCP",
            "character_sets = [\"ISO_IR 192\"]",
        )),
        &[
            "--listen",
            &listen,
            "echo",
            "store",
            "commitment",
            "find-move",
            "matching",
        ],
    );
    assert_verdicts(
        &report,
        code,
        0,
        &["echo", "store", "find-move", "matching"],
        "pass",
    );
    // dcmqrscp offers no Storage Commitment: skipped, not failed.
    assert_eq!(verdict(&report, "commitment"), "skipped", "{report:#}");
    let rows = table_rows(&report, "matching");
    let row = |value: &str| row_of(&rows, 1, value);
    assert_eq!(row("<t>alpha^john")[4], "case-sensitive", "{rows:?}");
    // Component groups: the whole alphabetic=ideographic=phonetic value and a wildcard
    // over it match; dcmqrscp compares whole values, not single groups.
    assert_eq!(row("<T>YAMADA^TAROU=山田^太郎=やまだ^たろう")[4], "ok");
    assert_eq!(row("<T>YAMADA*")[4], "ok");
    assert_eq!(row("<T>YAMADA^TAROU")[4], "only the whole value matches");
    // Time ranges.
    assert_eq!(row("080000-100000")[3], "AC", "{rows:?}");
    assert_eq!(row("140000-")[3], "BD", "{rows:?}");
    assert_eq!(row("-083000")[3], "A", "{rows:?}");
}

#[test]
fn probe_matrix_echoes_every_source_to_every_destination() {
    if !require(
        "probe_matrix_echoes_every_source_to_every_destination",
        &["storescp"],
    ) {
        return;
    }
    let scene = Scene::new("matrix");
    let (port, down) = (free_port(), free_port());
    let _scp = scene.storescp("storescp", port, &[]);
    let devices = scene.path().join("devices");
    std::fs::create_dir_all(&devices).unwrap();
    std::fs::write(
        devices.join("site.toml"),
        format!(
            r#"schema = "dicomtap-statement/1"
[device]
name = "SITE"
[[ae]]
title = "MODALITY"
initiator = true
[[ae]]
title = "STORESCP"
hosts = ["127.0.0.1"]
port = {port}
acceptor = true
accept_calling_ae_titles = ["DICOMTAP"]
[[ae]]
title = "GONE"
hosts = ["127.0.0.1"]
port = {down}
acceptor = true
[[ae]]
title = "SECURE"
hosts = ["127.0.0.1"]
port = {port}
acceptor = true
tls = {{ required = true }}
"#
        ),
    )
    .unwrap();
    let html = scene.path().join("matrix.html");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args([
        "probe",
        "--json",
        "--timeout",
        "3",
        "--source",
        "DICOMTAP",
        "--html",
        html.to_str().unwrap(),
        "matrix",
    ])
    .arg(&devices);
    let out = run("probe-matrix", cmd, scene.path(), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let m: Value = serde_json::from_str(&out.stdout).unwrap();
    let cell = |s: &str, d: &str| {
        m["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["source"] == s && c["destination"] == d)
            .unwrap_or_else(|| panic!("no cell {s} -> {d}: {m:#}"))
            .clone()
    };
    assert_eq!(cell("DICOMTAP", "STORESCP")["verdict"], "pass");
    // storescp answers anyone; the statement says it only accepts DICOMTAP.
    assert_eq!(
        cell("MODALITY", "STORESCP")["verdict"],
        "differs-from-statement"
    );
    assert_eq!(cell("MODALITY", "GONE")["verdict"], "fail");
    assert_eq!(cell("MODALITY", "GONE")["outcome"], "connection refused");
    // TLS required by the statement, no --tls-ca: says so instead of trying plain TCP.
    assert!(
        cell("MODALITY", "SECURE")["outcome"]
            .as_str()
            .unwrap()
            .starts_with("TLS required by the statement"),
        "{m:#}"
    );
    // With --tls-ca, against a plain-TCP storescp: the handshake fails, and says so.
    let pki = Pki::new(scene.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args(["probe", "--json", "--timeout", "3", "--tls-ca"])
        .arg(pki.path("ca.pem"))
        .arg("matrix")
        .arg(&devices);
    let out = run(
        "probe-matrix-tls",
        cmd,
        scene.path(),
        Duration::from_secs(60),
    );
    let t: Value = serde_json::from_str(&out.stdout).unwrap();
    let secure = t["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["destination"] == "SECURE")
        .unwrap();
    assert_eq!(secure["verdict"], "fail", "{t:#}");
    assert!(
        secure["outcome"]
            .as_str()
            .unwrap()
            .starts_with("TLS handshake failed"),
        "{t:#}"
    );
    // The page has the matrix and every failure with its reason.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<th>GONE"), "{page}");
    assert!(
        page.contains("MODALITY -&gt; GONE") && page.contains("connection refused"),
        "{page}"
    );
    // The text table: short cells, the reasons numbered below it.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args(["probe", "--timeout", "3", "matrix"])
        .arg(&devices);
    let out = run(
        "probe-matrix-text",
        cmd,
        scene.path(),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stdout.contains("FAIL 2"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("2 MODALITY -> GONE") && l.ends_with("connection refused")),
        "{}",
        out.stdout
    );
}
