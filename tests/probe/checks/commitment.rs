use super::*;

#[test]
fn probe_commitment_catches_silent_success() {
    let Some(scp) = PyScp::start(
        "probe_commitment_catches_silent_success",
        "silent",
        "silent",
        &[],
    ) else {
        return;
    };

    let (code, report) = scp.probe(
        "probe-silent",
        None,
        &["--commit-wait", "10", "store", "commitment"],
    );
    assert_verdicts(&report, code, 1, &["store"], "pass");
    assert_eq!(verdict(&report, "commitment"), "fail", "{report:#}");
    let c = result(&report, "commitment");
    assert!(
        c["summary"].as_str().unwrap().contains("silent Success"),
        "{c:#}"
    );
    assert!(
        c["details"].as_array().unwrap().iter().any(|d| d
            .as_str()
            .unwrap()
            .contains("reported failed (reason 0110)")),
        "{c:#}"
    );
}

#[test]
fn probe_commitment_runs_on_a_ct_only_device() {
    let Some(scp) = PyScp::start(
        "probe_commitment_runs_on_a_ct_only_device",
        "silentct",
        "silentct",
        &[],
    ) else {
        return;
    };
    let (code, report) = scp.probe("probe-silentct", None, &["--commit-wait", "10"]);
    // The defaults with --allow-writes: store in CT (the only class accepted), then
    // commitment, which catches every instance by SOP Instance UID.
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "store"), "pass", "{report:#}");
    assert_eq!(verdict(&report, "commitment"), "fail", "{report:#}");
    let stored: Vec<String> = table_rows(&report, "store")
        .iter()
        .filter(|r| r[0] == "CT" && r[2].starts_with("0000"))
        .map(|r| r[3].clone())
        .collect();
    assert_eq!(stored.len(), 2, "{report:#}");
    let details = result(&report, "commitment")["details"].to_string();
    for uid in &stored {
        assert!(
            details.contains(&format!("silent Success: {uid}")),
            "{uid}: {details}"
        );
    }
    assert!(
        summary(&report, "commitment").contains("2 of 2"),
        "{report:#}"
    );
}

#[test]
fn probe_commitment_names_instances_missing_from_the_report() {
    let Some(scp) = PyScp::start(
        "probe_commitment_names_instances_missing_from_the_report",
        "missing",
        "missing",
        &[],
    ) else {
        return;
    };
    let (code, report) = scp.probe("probe-missing", None, &["--commit-wait", "10", "store"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(verdict(&report, "store"), "pass", "{report:#}");
    assert_eq!(verdict(&report, "commitment"), "fail", "{report:#}");
    let stored: Vec<String> = table_rows(&report, "store")
        .iter()
        .filter(|r| r[2].starts_with("0000"))
        .map(|r| r[3].clone())
        .collect();
    assert!(stored.len() > 10, "{report:#}");
    let details = result(&report, "commitment")["details"].to_string();
    let missing = stored
        .iter()
        .filter(|u| {
            details.contains(&format!(
                "silent Success: {u} was answered Success by C-STORE but is missing"
            ))
        })
        .count();
    assert_eq!(missing, stored.len() - 1, "{details}");
    let n = stored.len();
    assert!(
        summary(&report, "commitment").contains(&format!("{} of {n}", n - 1)),
        "{report:#}"
    );
}
