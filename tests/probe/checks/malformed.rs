use super::*;

#[test]
fn probe_malformed_data_sets_catch_a_crash_on_an_unknown_vr() {
    let Some(scp) = PyScp::start(
        "probe_malformed_data_sets_catch_a_crash_on_an_unknown_vr",
        "crashvr",
        "crashvr",
        &[],
    ) else {
        return;
    };

    let (code, report) = scp.probe("probe-crashvr", None, &["--timeout", "3", "malformed"]);
    assert_verdicts(&report, code, 1, &["malformed"], "fail");
    let rows = table_rows(&report, "malformed");
    let at = rows
        .iter()
        .position(|r| r[0].contains("unknown VR code"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    // Up to the command-set cases the SCP survived; the unknown VR killed it.
    assert!(at > 0 && rows[at - 1][2].starts_with("Success"), "{rows:?}");
    assert!(rows[at][2].starts_with("FAILED"), "{rows:?}");
    assert_eq!(rows.len(), 11, "{rows:?}");
}

#[test]
fn probe_malformed_data_sets_against_storescp() {
    if !require("probe_malformed_data_sets_against_storescp", &["storescp"]) {
        return;
    }
    let scene = Scene::new("malformed-storescp");
    let port = free_port();
    let _scp = scene.storescp("storescp", port, &["-od", scene.path().to_str().unwrap()]);
    let (code, report) = scene.probe_ae(
        "probe-malformed-storescp",
        ("STORESCP", port),
        None,
        &["--timeout", "3", "malformed"],
    );
    assert_verdicts(&report, code, 0, &["malformed"], "pass");
    let rows = table_rows(&report, "malformed");
    let row = |needle: &str| row_about(&rows, needle);
    // DCMTK cannot parse these data sets and aborts the association; it stays up.
    for case in [
        "unknown VR code",
        "length past the end",
        "without delimiters",
    ] {
        assert!(row(case)[1].contains("aborted"), "{case}: {rows:?}");
        assert_eq!(row(case)[2], "Success", "{case}: {rows:?}");
    }
    // A known tag with a wrong VR still parses: a C-STORE-RSP comes back.
    assert!(
        row("Rows (US) sent with VR FD")[1].starts_with("C-STORE-RSP"),
        "{rows:?}"
    );
}
