use super::*;

#[test]
fn probe_echo_contexts_store_against_storescp() {
    if !require("probe_echo_contexts_store_against_storescp", &["storescp"]) {
        return;
    }
    let scene = Scene::new("storescp");
    let (_scp, port, received) = scene.receiving_storescp();
    let html = scene.path().join("probe.html");
    let junit = scene.path().join("probe.xml");
    let (code, report) = scene.probe_ae(
        "probe-storescp",
        ("STORESCP", port),
        None,
        &[
            "--html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "echo",
            "contexts",
            "store",
        ],
    );
    assert_verdicts(&report, code, 0, &["echo", "contexts", "store"], "pass");
    // storescp accepts every storage class in the uncompressed syntaxes.
    let rows = table_rows(&report, "contexts");
    assert!(
        rows.iter().any(|r| r[0] == "CTImageStorage"
            && r[1] == "ExplicitVRLittleEndian"
            && r[3] == "accepted"),
        "{rows:?}"
    );
    // One instance per generated IOD and uncompressed syntax storescp accepted arrived.
    let stored = table_rows(&report, "store")
        .iter()
        .filter(|r| r[2].starts_with("0000"))
        .count();
    assert!(stored >= 20, "{report:#}");
    let files = std::fs::read_dir(&received).unwrap().count();
    assert_eq!(files, stored, "storescp received {files} files");
    // What was written is listed for deletion: one study, every instance.
    assert_eq!(report["written"][0]["instances"], stored, "{report:#}");
    assert_eq!(report["written"].as_array().unwrap().len(), 1, "{report:#}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testcase") && xml.contains("name=\"store\""),
        "{xml}"
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("<h2 id=\"contexts\">")
    );
    // Disruptive checks never run unless named.
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["check"] != "malformed")
    );
}

#[test]
fn probe_stores_what_a_ct_mr_only_device_accepts_marked_as_test_data() {
    if !require(
        "probe_stores_what_a_ct_mr_only_device_accepts_marked_as_test_data",
        &["storescp", "dcmdump"],
    ) {
        return;
    }
    let scene = Scene::new("ctmr");
    let port = free_port();
    let received = scene.path().join("received");
    let _scp = ct_mr_storescp(&scene, port, &received);
    let (code, report) = scene.probe_ae(
        "probe-ctmr",
        ("STORESCP", port),
        None,
        &["--test-patient", "ZZSITE-TEST", "all"],
    );
    assert_verdicts(&report, code, 0, &["echo", "contexts", "store"], "pass");
    // CT and MR, each in both uncompressed syntaxes; nothing else offered (the sweep saw
    // the rest rejected).
    let rows = table_rows(&report, "store");
    let stored: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r[2].starts_with("0000"))
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(stored.len(), 4, "{rows:?}");
    assert_eq!(rows.len(), 4, "{rows:?}");
    for iod in ["CT", "MR"] {
        assert_eq!(
            stored.iter().filter(|(i, _)| i == iod).count(),
            2,
            "{rows:?}"
        );
    }
    // Services the contexts sweep saw rejected are skipped, with why.
    for c in ["commitment", "find-move", "matching"] {
        assert_eq!(verdict(&report, c), "skipped", "{c}: {report:#}");
        assert!(summary(&report, c).contains("contexts sweep"), "{report:#}");
    }
    // The brief contexts table lists what was accepted, not every row.
    let brief = result(&report, "contexts")["brief"]["rows"]
        .as_array()
        .unwrap()
        .len();
    assert!(brief <= 4, "{report:#}");
    // Marked as test data, and listed for deletion.
    let files: Vec<PathBuf> = std::fs::read_dir(&received)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 5, "4 stored + max-pdu's slice: {files:?}");
    let dump = run(
        "dcmdump",
        command("dcmdump", &[files[0].to_str().unwrap()]),
        scene.path(),
        Duration::from_secs(20),
    )
    .text();
    for needle in [
        "ZZSITE-TEST",
        "dicomtap probe test data",
        "dicomtap probe",
        "(0010,4000)",
    ] {
        assert!(dump.contains(needle), "{needle} not in\n{dump}");
    }
    let written = report["written"].as_array().unwrap();
    assert_eq!(written.len(), 2, "{report:#}");
    assert!(
        written
            .iter()
            .all(|w| w["patient_id"].as_str().unwrap().starts_with("ZZSITE-TEST")),
        "{report:#}"
    );
    let store_study = result(&report, "store")["details"].to_string();
    assert!(
        store_study.contains(written[0]["study_uid"].as_str().unwrap()),
        "{report:#}"
    );
}

#[test]
fn probe_without_allow_writes_writes_nothing() {
    if !require("probe_without_allow_writes_writes_nothing", &["storescp"]) {
        return;
    }
    let scene = Scene::new("readonly");
    let (_scp, port, received) = scene.receiving_storescp();
    let target = format!("127.0.0.1:{port}");
    // A writing check named without --allow-writes: refused before anything is sent,
    // with what it would have stored.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args([
        "probe",
        "--target",
        &target,
        "--called-ae",
        "STORESCP",
        "store",
    ]);
    let out = run("probe-refused", cmd, scene.path(), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr.contains("--allow-writes"), "{}", out.text());
    assert!(out.stderr.contains("^STORE"), "{}", out.text());
    // `all` and the defaults without --allow-writes: only what writes nothing.
    for checks in [&["all"][..], &[]] {
        let mut args = vec!["--target", target.as_str(), "--called-ae", "STORESCP"];
        args.extend(checks);
        let (code, report) = scene.probe_as_given("probe-readonly", &args);
        assert_eq!(code, 0, "{report:#}");
        let ran: Vec<&str> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["check"].as_str().unwrap())
            .collect();
        assert!(
            ran.iter()
                .all(|c| !["store", "commitment", "find-move", "matching", "charset"].contains(c)),
            "{ran:?}"
        );
        assert!(
            ran.contains(&"contexts") && ran.contains(&"max-pdu"),
            "{ran:?}"
        );
        assert!(report["written"].as_array().unwrap().is_empty());
    }
    assert_eq!(std::fs::read_dir(&received).unwrap().count(), 0);
}

#[test]
fn probe_stops_at_a_target_that_refuses_the_connection() {
    let scene = Scene::new("refused");
    let port = free_port();
    let started = std::time::Instant::now();
    let (code, report) = scene.probe_ae(
        "probe-refused",
        ("NOBODY", port),
        None,
        &["all", "load", "malformed"],
    );
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["results"].as_array().unwrap().len(), 1, "{report:#}");
    assert!(
        report["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("refused")),
        "{report:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn probe_all_against_storescp_with_its_bundled_statement() {
    if !require(
        "probe_all_against_storescp_with_its_bundled_statement",
        &["storescp"],
    ) {
        return;
    }
    let scene = Scene::new("storescp-bundled");
    let (_scp, port, _received) = scene.receiving_storescp();
    let statement = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("statements/dcmtk-storescp.toml"),
    )
    .unwrap();
    let (code, report) = scene.probe_ae(
        "probe-bundled",
        ("STORESCP", port),
        Some(&statement),
        &["all"],
    );
    // Q/R and Storage Commitment are not claimed: skipped, not failed.
    for c in ["commitment", "find-move", "matching"] {
        assert_eq!(verdict(&report, c), "skipped", "{c}: {report:#}");
        assert!(
            summary(&report, c).contains("statement claims no"),
            "{report:#}"
        );
    }
    assert_eq!(verdict(&report, "store"), "pass", "{report:#}");
    assert_eq!(code, 0, "{report:#}");
}

/// Orthanc against its bundled statement (thousands of claimed contexts): the text, HTML
/// and JUnit reports lead with what differs and stay small; JSON keeps every row.
#[test]
fn probe_contexts_against_orthanc_reads_in_a_screen() {
    if !require(
        "probe_contexts_against_orthanc_reads_in_a_screen",
        &["Orthanc"],
    ) {
        return;
    }
    let scene = Scene::new("orthanc-contexts");
    let (port, move_port) = (free_port(), free_port());
    let _orthanc = orthanc(scene.path(), port, move_port, serde_json::json!({}));
    let statement = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("statements/orthanc-1.10.toml"),
    )
    .unwrap();
    let (html, junit) = (scene.path().join("c.html"), scene.path().join("c.xml"));
    let statement_path = scene.statement(&statement);
    let target = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args([
        "probe",
        "--target",
        &target,
        "--called-ae",
        "ORTHANC",
        "--statement",
    ])
    .arg(&statement_path)
    .arg("--html")
    .arg(&html)
    .arg("--junit")
    .arg(&junit)
    .arg("contexts");
    let out = run(
        "probe-contexts-text",
        cmd,
        scene.path(),
        Duration::from_secs(240),
    );
    let text = out.stdout.clone();
    let (html, junit) = (
        std::fs::read_to_string(&html).unwrap(),
        std::fs::read_to_string(&junit).unwrap(),
    );
    eprintln!(
        "contexts against Orthanc: text {} lines, HTML {} bytes, JUnit {} bytes",
        text.lines().count(),
        html.len(),
        junit.len()
    );
    assert!(text.lines().count() < 80, "{text}");
    assert!(html.len() < 64 << 10, "HTML {} bytes", html.len());
    assert!(junit.len() < 64 << 10, "JUnit {} bytes", junit.len());
    assert!(text.contains("accepted as claimed"), "{text}");
    assert_eq!(junit.matches("<testcase").count(), 1, "{junit}");
    // --detail: every row in the text.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
    cmd.args([
        "probe",
        "--target",
        &target,
        "--called-ae",
        "ORTHANC",
        "--statement",
    ])
    .arg(&statement_path)
    .args(["--detail", "contexts"]);
    let detail = run(
        "probe-contexts-detail",
        cmd,
        scene.path(),
        Duration::from_secs(240),
    );
    assert!(detail.stdout.lines().count() > 7000, "{}", detail.text());
    // JSON: every row; the brief rows are exactly those marked as differing.
    let (_, report) = scene.probe_ae(
        "probe-contexts-json",
        ("ORTHANC", port),
        Some(&statement),
        &["contexts"],
    );
    let all = table_rows(&report, "contexts");
    assert!(all.len() > 1000, "{} rows", all.len());
    let differing = all.iter().filter(|r| r[3].contains("<-")).count();
    let brief = result(&report, "contexts")["brief"]["rows"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(brief, differing, "{report:#}");
}
