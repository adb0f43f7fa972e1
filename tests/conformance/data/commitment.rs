use super::*;

// ---------------------------------------------------------------------------------------
// Storage Commitment: storage-commitment-overdue, storage-commitment-report-association

fn archive_statement(report_on: &str, max_wait_s: &str) -> String {
    statement(
        "PY_ARCHIVE",
        "ARCHIVE",
        "acceptor = true\ninitiator = true",
        &[("CTImageStorage", "SCP", PY_TS)],
        &format!(
            "[[ae.capability]]\nsop_class = \"StorageCommitmentPushModel\"\nrole = \"SCP\"\ntransfer_syntaxes = {PY_TS}\nrole_selection = {{ scu = false, scp = true }}\nstorage_commitment = {{ report_on = {report_on}, max_wait_s = {max_wait_s} }}\n"
        ),
    )
}

/// A captured commitment exchange: the archive (commitment SCP) on `port`, the modality
/// listening for reports on `report_port`.
struct Commitment {
    capture: PathBuf,
    port: u16,
    report_port: u16,
}

/// The commitment SCP reporting in `mode` after `delay` s, the modality holding its
/// association at most `hold` s; the modality must print `expect`.
fn commitment(
    scene: &Scene,
    py: &Path,
    data: &PydicomData,
    (mode, delay, hold): (&str, &str, &str),
    expect: &str,
) -> Commitment {
    let (port, report_port) = (free_port(), free_port());
    let (p, r) = (port.to_string(), report_port.to_string());
    let archive = data_peer(
        scene,
        py,
        "archive",
        port,
        &["commit-scp", &p, mode, delay, &r],
    );
    let file = data.test_files.join("CT_small.dcm");
    let mut out = String::new();
    let capture = scene.capture(&format!("commit-{mode}"), &[port, report_port], || {
        out = data_run(
            scene,
            py,
            "modality",
            &["commit-scu", &p, &r, file.to_str().unwrap(), hold],
        );
    });
    drop(archive);
    assert!(out.contains(expect), "{out}");
    Commitment {
        capture,
        port,
        report_port,
    }
}

/// The one storage-commitment-overdue finding: no report within the claimed 1 s of the
/// N-ACTION (message 1, which the evidence points at).
fn assert_overdue_within_1_s(findings: &[Value], c: &Commitment) -> Value {
    let f = with(findings, "storage-commitment-overdue", "PY_ARCHIVE");
    assert_eq!(f.len(), 1, "{}", dump(findings));
    assert_eq!(f[0]["claim"], "storage_commitment.max_wait_s = 1");
    let observed = text(&f[0]["observed"]);
    assert!(
        observed.starts_with("no N-EVENT-REPORT for transaction ")
            && observed
                .ends_with("(1 instance(s)) within 1 s of the N-ACTION (its report is overdue)"),
        "{observed}"
    );
    assert_eq!(f[0]["evidence"]["message_id"], 1);
    assert_evidence(&f[0], &c.capture, c.port, None);
    f[0].clone()
}

#[test]
fn a_commitment_report_later_than_claimed_is_overdue() {
    let Some((scene, py, data)) = conformance_scene("commit-late", &["dumpcap"]) else {
        return;
    };
    // The report comes on a new association 3 s after the N-ACTION.
    let c = commitment(&scene, &py, &data, ("new", "3", "15"), "report received");

    // Claimed: reports within 1 s, on the same association.
    let (findings, _, _) = scene.analyze_with(
        "archive.toml",
        &archive_statement("[\"same_association\"]", "1"),
        &c.capture,
    );
    // The deadline passes in capture time as the report's association opens, before the
    // report itself: the finding is made then, against the N-ACTION, and the late report
    // is not reported overdue a second time.
    let f = assert_overdue_within_1_s(&findings, &c);
    // The transaction is still remembered when the late report comes: it is checked for
    // its association, with the N-ACTION linked.
    let a = with(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(a.len(), 1, "{}", dump(&findings));
    assert_eq!(findings.len(), 2, "{}", dump(&findings));
    assert!(
        text(&a[0]["observed"]).contains(" on new association (association #"),
        "{}",
        a[0]
    );
    assert_evidence(&a[0], &c.capture, c.report_port, Some("requestor"));
    let related = a[0]["evidence"]["related"].as_array().unwrap();
    assert_eq!(related.len(), 1, "{}", a[0]);
    assert_eq!(
        related[0]["association"], f["evidence"]["association"],
        "{}",
        a[0]
    );
    assert_eq!(related[0]["message_id"], 1, "{}", a[0]);
    assert_ne!(
        a[0]["evidence"]["association"], related[0]["association"],
        "{}",
        a[0]
    );

    // New associations claimed: only the lateness.
    let (findings, _, _) = scene.analyze_with(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "1"),
        &c.capture,
    );
    sole(&findings, "storage-commitment-overdue", "PY_ARCHIVE");

    // Claimed wait long enough: nothing.
    scene.assert_conforms(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "10"),
        &c.capture,
    );
}

#[test]
fn a_commitment_never_reported_is_overdue_once_the_claimed_wait_passed() {
    let Some((scene, py, data)) = conformance_scene("commit-never", &["dumpcap"]) else {
        return;
    };
    // No report at all; the modality keeps its association 3 s, then releases.
    let c = commitment(&scene, &py, &data, ("none", "0", "3"), "no report");

    let (findings, _, _) = scene.analyze_with(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "1"),
        &c.capture,
    );
    // The evidence points at the N-ACTION (pynetdicom numbers it 1, as the C-STORE).
    assert_overdue_within_1_s(&findings, &c);
    assert_eq!(findings.len(), 1, "{}", dump(&findings));

    // The capture ends before a 10 s deadline: it proves nothing, nothing is reported.
    scene.assert_conforms(
        "archive.toml",
        &archive_statement("[\"new_association\"]", "10"),
        &c.capture,
    );
}

#[test]
fn a_commitment_report_on_an_unclaimed_kind_of_association_is_reported() {
    let Some((scene, py, data)) = conformance_scene("commit-assoc", &["dumpcap"]) else {
        return;
    };
    let same = commitment(&scene, &py, &data, ("same", "0.5", "15"), "report received");
    let new = commitment(&scene, &py, &data, ("new", "0.5", "15"), "report received");

    // Reported on the same association; the statement says new associations only.
    let claim_new = archive_statement("[\"new_association\"]", "60");
    let (findings, _, _) = scene.analyze_with("archive.toml", &claim_new, &same.capture);
    let f = sole(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(
        f["claim"],
        "storage_commitment.report_on = [new_association]"
    );
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("sent the report for transaction ")
            && observed.contains(" on same association (association #"),
        "{observed}"
    );
    assert_evidence(&f, &same.capture, same.port, Some("acceptor"));
    let related = f["evidence"]["related"].as_array().unwrap();
    assert_eq!(
        f["evidence"]["association"], related[0]["association"],
        "{f}"
    );
    // The new-association report conforms to that claim.
    scene.assert_conforms("archive.toml", &claim_new, &new.capture);

    // And the other way round.
    let claim_same = archive_statement("[\"same_association\"]", "60");
    let (findings, _, _) = scene.analyze_with("archive.toml", &claim_same, &new.capture);
    let f = sole(
        &findings,
        "storage-commitment-report-association",
        "PY_ARCHIVE",
    );
    assert_eq!(
        f["claim"],
        "storage_commitment.report_on = [same_association]"
    );
    assert!(
        text(&f["observed"]).contains(" on new association (association #"),
        "{f}"
    );
    assert_evidence(&f, &new.capture, new.report_port, Some("requestor"));
    scene.assert_conforms("archive.toml", &claim_same, &same.capture);
}
