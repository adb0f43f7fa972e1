#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The bundled device statements (statements/) against the real peers they describe:
//! each peer runs with its default options, ordinary traffic is captured on loopback with
//! dumpcap, and `dicomtap analyze --statements` with only that device's statement must
//! report nothing for it, `--fail-on warning` must pass and the JUnit report must list
//! the device with nothing skipped.
//!
//! Peers come from scripts/install-test-peers.sh; a missing peer fails the test unless
//! DICOMTAP_ALLOW_MISSING_PEERS=1.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::conformance::*;
use support::*;

/// How long a DCMTK or pynetdicom client may take.
const CLIENT: Duration = Duration::from_secs(60);

/// The bundled statement `file` with its `port = N` line set to `port`: the port is site
/// configuration (dcmqrscp.cfg NetworkTCPPort, orthanc.json DicomPort) and the tests use a
/// free one.
fn bundled_on_port(file: &str, port: u16) -> String {
    let text = bundled(file);
    // The bundled statements claim no port (it is site-specific): a site's copy adds the
    // one its installation listens on, after the AE's title.
    assert!(
        !text.lines().any(|l| l.starts_with("port = ")),
        "{file} claims no site-specific port"
    );
    let mut lines = Vec::new();
    let mut added = false;
    for l in text.lines() {
        lines.push(l.to_string());
        if !added && l.starts_with("title = ") {
            lines.push(format!("port = {port}"));
            added = true;
        }
    }
    assert!(added, "{file} has an AE title");
    lines.join("\n") + "\n"
}

/// Runs a DCMTK tool (bounded) and requires success.
fn tool(dir: &Path, program: &str, args: &[String]) {
    run_ok(program, command(program, args), dir, CLIENT);
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The retrievals did something: MOVEDEST (storescp `dest`, writing to `moved`) got the
/// three moved instances (within 10 s), getscu (writing to `got`) at least one.
fn assert_retrieved(moved: &Path, got: &Path, peer: &Proc, dest: &Proc) {
    assert!(
        wait_until(Duration::from_secs(10), || count_files(moved) >= 3),
        "MOVEDEST received {} files\n{}\n{}",
        count_files(moved),
        peer.output(),
        dest.output()
    );
    assert!(count_files(got) >= 1, "getscu received nothing");
}

/// The findings for `device` must be empty; the exit code of `--fail-on warning` 0; the
/// JUnit report must name the device and skip nothing.
fn assert_clean(findings: &[serde_json::Value], code: i32, junit: &str, device: &str) {
    let mine: Vec<_> = findings
        .iter()
        .filter(|f| f["device"] == device)
        .cloned()
        .collect();
    assert!(
        mine.is_empty(),
        "the bundled statement disagrees with {device}:\n{}",
        dump(&mine)
    );
    assert!(
        findings.is_empty(),
        "only {device}'s statement is loaded, yet:\n{}",
        dump(findings)
    );
    assert_eq!(code, 0, "--fail-on warning");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(
        junit.contains(device) && !junit.contains("<skipped"),
        "{junit}"
    );
}

#[test]
fn bundled_dcmtk_storescp_statement_matches_real_storescp() {
    let Some((scene, _, data)) = conformance_scene(
        "bundled-storescp",
        &["storescu", "storescp", "echoscu", "dumpcap"],
    ) else {
        return;
    };
    scene.statement("dcmtk-storescp.toml", &bundled("dcmtk-storescp.toml"));
    let port = free_port();
    let cap = Capture::start("bundled-storescp", &[port], scene.path());
    let scp = scene.storescp(port, &[]);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.test_files.join("rtplan.dcm"),
    ];
    scene.storescu(port, "STORESCU", &[], &files);
    scene.storescu(port, "STORESCU", &["-xb"], &files[..1]);
    run_ok(
        "echoscu",
        command(
            "echoscu",
            &["-aec", "STORESCP", "127.0.0.1", &port.to_string()],
        ),
        scene.path(),
        Duration::from_secs(30),
    );
    drop(scp);
    let (findings, code, junit) = scene.analyze(&cap.finish());
    assert_clean(&findings, code, &junit, "DCMTK_STORESCP");
}

#[test]
fn bundled_pynetdicom_storescp_statement_matches_real_app() {
    let Some((scene, py, data)) = conformance_scene("bundled-pynetdicom", &["storescu", "dumpcap"])
    else {
        return;
    };
    scene.statement(
        "pynetdicom-storescp.toml",
        &bundled("alternatives/pynetdicom-storescp.toml"),
    );
    let port = free_port();
    let out = scene.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let cap = Capture::start("bundled-pynetdicom", &[port], scene.path());
    let mut scp = Proc::spawn(
        "pynetdicom-storescp",
        command(
            py.to_str().unwrap(),
            &[
                "-m",
                "pynetdicom",
                "storescp",
                "--output-directory",
                out.to_str().unwrap(),
                &port.to_string(),
            ],
        ),
        scene.path(),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(20), Some(&mut scp)),
        "pynetdicom storescp did not start\n{}",
        scp.output()
    );
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    scene.storescu(port, "STORESCU", &[], &files);
    scp.stop("TERM", Duration::from_secs(5));
    let (findings, code, junit) = scene.analyze(&cap.finish());
    // The device took part: its rules were evaluated, not skipped.
    assert_clean(&findings, code, &junit, "PYNETDICOM_STORESCP");
}

const CT_PATIENT: &str = "1CT1";
const MR_STUDY: &str = "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457";
const RTPLAN_STUDY: &str = "1.22.333.4.555555.6.7777777777777777777777777777";
const CT_STUDY: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";

/// pydicom's sample files `names`.
fn samples(data: &PydicomData, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|f| data.test_files.join(f)).collect()
}

/// findscu at each level of the Patient Root and Study Root models (and Patient/Study
/// Only when `patient_study_only`) against the Q/R SCP `called` at `port`; every query
/// must match at least one of the stored samples.
fn find_everything(dir: &Path, called: &str, port: u16, patient_study_only: bool) {
    let study = format!("StudyInstanceUID={MR_STUDY}");
    let mut queries: Vec<(&str, Vec<&str>)> = vec![
        (
            "-P",
            vec!["QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"],
        ),
        (
            "-P",
            vec![
                "QueryRetrieveLevel=STUDY",
                "PatientID=4MR1",
                "StudyInstanceUID",
                "StudyDate",
            ],
        ),
        (
            "-S",
            vec![
                "QueryRetrieveLevel=STUDY",
                "StudyInstanceUID",
                "PatientID",
                "PatientName",
            ],
        ),
        (
            "-S",
            vec![
                "QueryRetrieveLevel=SERIES",
                &study,
                "SeriesInstanceUID",
                "Modality",
            ],
        ),
        (
            "-S",
            vec![
                "QueryRetrieveLevel=IMAGE",
                &study,
                "SeriesInstanceUID",
                "SOPInstanceUID",
            ],
        ),
    ];
    if patient_study_only {
        queries.push(("-O", vec!["QueryRetrieveLevel=PATIENT", "PatientID"]));
    }
    for (model, keys) in queries {
        let mut args = strings(&[model, "-v", "-aet", "FINDSCU", "-aec", called]);
        for k in &keys {
            args.extend(["-k".to_string(), k.to_string()]);
        }
        args.extend(["127.0.0.1".to_string(), port.to_string()]);
        let out = run_ok("findscu", command("findscu", &args), dir, CLIENT);
        assert!(
            out.stderr.contains("(Pending)") || out.stdout.contains("(Pending)"),
            "findscu {model} {keys:?} matched nothing:\n{}",
            out.text()
        );
    }
}

/// Counts the files in a directory (recursively).
fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}

/// The C-MOVEs of the Q/R tests, all to MOVEDEST: the MR study (Study Root), the RT Plan's
/// study (Patient Root) and the CT's study (Study Root), whose data sets carry private
/// attributes the archive did not write.
fn move_studies(dir: &Path, called: &str, port: u16) {
    let moves: [(&str, Vec<String>); 3] = [
        ("-S", vec![format!("StudyInstanceUID={MR_STUDY}")]),
        (
            "-P",
            vec![
                "PatientID=id00001".to_string(),
                format!("StudyInstanceUID={RTPLAN_STUDY}"),
            ],
        ),
        ("-S", vec![format!("StudyInstanceUID={CT_STUDY}")]),
    ];
    for (model, keys) in moves {
        let mut args = strings(&[
            model,
            "-aet",
            "MOVESCU",
            "-aec",
            called,
            "-aem",
            "MOVEDEST",
            "-k",
            "QueryRetrieveLevel=STUDY",
        ]);
        for k in keys {
            args.extend(["-k".to_string(), k]);
        }
        args.extend(["127.0.0.1".to_string(), port.to_string()]);
        tool(dir, "movescu", &args);
    }
}

/// C-GET of the CT's patient (Patient Root) into `got`: the CT a second time, after the
/// C-MOVE of its study.
fn get_ct_patient(dir: &Path, called: &str, port: u16, got: &Path) {
    std::fs::create_dir_all(got).unwrap();
    tool(
        dir,
        "getscu",
        &strings(&[
            "-P",
            "-aet",
            "GETSCU",
            "-aec",
            called,
            "-od",
            got.to_str().unwrap(),
            "-k",
            "QueryRetrieveLevel=PATIENT",
            "-k",
            &format!("PatientID={CT_PATIENT}"),
            "127.0.0.1",
            &port.to_string(),
        ]),
    );
}

#[test]
fn bundled_dcmqrscp_statement_matches_real_dcmqrscp() {
    let Some((scene, _, data)) = conformance_scene(
        "bundled-dcmqrscp",
        &[
            "dcmqrscp", "storescu", "storescp", "findscu", "movescu", "getscu", "echoscu",
            "dumpcap",
        ],
    ) else {
        return;
    };
    let dir = scene.path();
    // CT, MR (explicit VR LE), RT Plan, RT Dose (implicit VR LE), 12-lead ECG.
    let files = samples(
        &data,
        &[
            "CT_small.dcm",
            "MR_small.dcm",
            "rtplan.dcm",
            "rtdose.dcm",
            "waveform_ecg.dcm",
        ],
    );

    // The move destination: a storescp (no statement: only dcmqrscp is checked).
    let moved = dir.join("moved");
    let (mut dest, dest_port) =
        support::peers::storescp("movedest", &moved, dir, &["-aet", "MOVEDEST"]);
    // dcmqrscp with the AE title of the bundled statement in its AETable.
    let qr = support::peers::Dcmqrscp::configure(dir, &[("MOVEDEST", dest_port)]);
    let cfg = std::fs::read_to_string(&qr.config).unwrap();
    assert!(cfg.contains("AETable BEGIN\nQRSCP "), "{cfg}");
    std::fs::write(
        &qr.config,
        cfg.replace("AETable BEGIN\nQRSCP ", "AETable BEGIN\nDCMQRSCP "),
    )
    .unwrap();
    scene.statement(
        "dcmtk-dcmqrscp.toml",
        &bundled_on_port("dcmtk-dcmqrscp.toml", qr.port),
    );

    let cap = Capture::start("bundled-dcmqrscp", &[qr.port, dest_port], dir);
    let mut scp = qr.start("dcmqrscp", dir, &[]);
    let p = qr.port.to_string();
    let aec = |extra: &[&str]| {
        let mut a = strings(&["-aet", "STORESCU", "-aec", "DCMQRSCP"]);
        a.extend(strings(extra));
        a
    };
    // C-ECHO; C-STORE of every sample (storescu's default proposal), then the MR again in
    // implicit VR LE only and the CT in explicit VR big endian only.
    tool(dir, "echoscu", &aec(&["127.0.0.1", &p]));
    let mut store = aec(&["127.0.0.1", &p]);
    store.extend(files.iter().map(|f| f.display().to_string()));
    tool(dir, "storescu", &store);
    tool(
        dir,
        "storescu",
        &aec(&["-xi", "127.0.0.1", &p, files[1].to_str().unwrap()]),
    );
    tool(
        dir,
        "storescu",
        &aec(&["-xb", "127.0.0.1", &p, files[0].to_str().unwrap()]),
    );

    // C-FIND at every level of each model.
    find_everything(dir, "DCMQRSCP", qr.port, true);

    // C-MOVE to MOVEDEST, then C-GET.
    move_studies(dir, "DCMQRSCP", qr.port);
    let got = dir.join("got");
    get_ct_patient(dir, "DCMQRSCP", qr.port, &got);
    tool(dir, "echoscu", &aec(&["127.0.0.1", &p]));
    // The retrievals did something: storescp got the MR, RT Plan and CT, getscu the CT.
    assert_retrieved(&moved, &got, &scp, &dest);
    scp.stop("TERM", Duration::from_secs(5));
    dest.stop("TERM", Duration::from_secs(5));
    let (findings, code, junit) = scene.analyze(&cap.finish());
    assert_clean(&findings, code, &junit, "DCMTK_DCMQRSCP");
}

#[test]
fn bundled_orthanc_statement_matches_real_orthanc() {
    let Some((scene, py, data)) = conformance_scene(
        "bundled-orthanc",
        &[
            "Orthanc", "storescu", "dcmsend", "storescp", "findscu", "movescu", "getscu",
            "echoscu", "dumpcap",
        ],
    ) else {
        return;
    };
    let dir = scene.path();
    let (orthanc_port, commit_port) = (free_port(), free_port());
    scene.statement(
        "orthanc-1.10.toml",
        &bundled_on_port("orthanc-1.10.toml", orthanc_port),
    );
    let moved = dir.join("moved");
    let (mut dest, dest_port) =
        support::peers::storescp("movedest", &moved, dir, &["-aet", "MOVEDEST"]);

    let cap = Capture::start(
        "bundled-orthanc",
        &[orthanc_port, dest_port, commit_port],
        dir,
    );
    // The SCUs are registered modalities (C-FIND, C-MOVE and C-GET are only answered for
    // known AE titles); PYSCU may ask for Storage Commitment and gets its report at
    // `commit_port`.
    let mut orthanc = support::peers::orthanc(
        dir,
        "orthanc",
        orthanc_port,
        serde_json::json!({
            "DicomModalities": {
                "movedest": ["MOVEDEST", "127.0.0.1", dest_port],
                "findscu": ["FINDSCU", "127.0.0.1", 104],
                "movescu": ["MOVESCU", "127.0.0.1", 104],
                "getscu": ["GETSCU", "127.0.0.1", 104],
                "pyscu": { "AET": "PYSCU", "Host": "127.0.0.1", "Port": commit_port,
                           "AllowStorageCommitment": true },
            },
        }),
    );
    let p = orthanc_port.to_string();
    let scu = |extra: &[&str]| {
        let mut a = strings(&["-aet", "STORESCU", "-aec", "ORTHANC"]);
        a.extend(strings(extra));
        a
    };
    // C-ECHO; C-STORE of several SOP classes in the files' own transfer syntaxes
    // (uncompressed, deflated, JPEG baseline and extended, JPEG 2000, RLE), then the CT again in
    // explicit VR big endian and the RT Plan in implicit VR LE only.
    tool(dir, "echoscu", &scu(&["127.0.0.1", &p]));
    let uncompressed = samples(
        &data,
        &[
            "CT_small.dcm",
            "MR_small.dcm",
            "rtplan.dcm",
            "waveform_ecg.dcm",
        ],
    );
    let compressed = samples(
        &data,
        &[
            "image_dfl.dcm",
            "SC_rgb_jpeg_dcmtk.dcm",
            "JPGExtended.dcm",
            "JPEG2000.dcm",
            "MR_small_RLE.dcm",
        ],
    );
    let mut store = scu(&["127.0.0.1", &p]);
    store.extend(uncompressed.iter().map(|f| f.display().to_string()));
    tool(dir, "storescu", &store);
    // dcmsend proposes each file's own transfer syntax (storescu would decompress).
    let mut store = scu(&["127.0.0.1", &p]);
    store.extend(compressed.iter().map(|f| f.display().to_string()));
    tool(dir, "dcmsend", &store);
    tool(
        dir,
        "storescu",
        &scu(&["-xb", "127.0.0.1", &p, uncompressed[0].to_str().unwrap()]),
    );
    tool(
        dir,
        "storescu",
        &scu(&["-xi", "127.0.0.1", &p, uncompressed[2].to_str().unwrap()]),
    );

    // C-FIND at every level of the Patient Root and Study Root models.
    find_everything(dir, "ORTHANC", orthanc_port, false);
    // C-MOVE to the registered MOVEDEST.
    move_studies(dir, "ORTHANC", orthanc_port);
    // Storage Commitment of everything stored above.
    let commit_port = commit_port.to_string();
    let mut args = vec!["commit", p.as_str(), "ORTHANC", commit_port.as_str()];
    args.extend(
        uncompressed
            .iter()
            .chain(&compressed)
            .map(|f| f.to_str().unwrap()),
    );
    let out = run_ok(
        "commit",
        scene.script(&py, "bundled.py", &args),
        dir,
        CLIENT,
    );
    assert!(out.stdout.contains("N_ACTION 0x0000"), "{}", out.text());
    assert!(
        out.stdout.contains("EVENT_REPORT type=1")
            && out.stdout.contains(&format!(
                "refs={} failed=0",
                uncompressed.len() + compressed.len()
            )),
        "Orthanc commits every stored instance:\n{}",
        out.text()
    );
    // C-GET after the commitment (the CT again).
    let got = dir.join("got");
    get_ct_patient(dir, "ORTHANC", orthanc_port, &got);
    tool(dir, "echoscu", &scu(&["127.0.0.1", &p]));
    assert_retrieved(&moved, &got, &orthanc, &dest);
    orthanc.stop("TERM", Duration::from_secs(10));
    dest.stop("TERM", Duration::from_secs(5));
    let (findings, code, junit) = scene.analyze(&cap.finish());
    assert_clean(&findings, code, &junit, "ORTHANC");
}
