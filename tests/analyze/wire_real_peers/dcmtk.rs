use super::*;

#[test]
fn storescu_to_storescp_with_every_kind_of_transfer_syntax() {
    let Some((_, data)) = require_peers(
        "storescu_to_storescp",
        &["storescu", "storescp", "dcmdump", "dumpcap", "tshark"],
    ) else {
        return;
    };
    let t = |f: &str| data.test_files.join(f);
    let ch = |f: &str| data.charset_files.join(f);
    // (storescu transfer syntax option, files): each run is one association.
    let runs: Vec<(&str, Vec<PathBuf>)> = vec![
        (
            "-x=",
            vec![
                t("CT_small.dcm"),
                t("MR_small.dcm"),
                ch("chrFren.dcm"),
                ch("chrX1.dcm"),
                ch("chrRuss.dcm"),
                ch("chrH31.dcm"),
                ch("chrH32.dcm"),
            ],
        ),
        ("-xi", vec![t("CT_small.dcm"), ch("chrGerm.dcm")]),
        ("-xb", vec![t("MR_small_bigendian.dcm"), t("CT_small.dcm")]),
        ("-xd", vec![t("CT_small.dcm"), t("image_dfl.dcm")]),
        ("-xe", vec![t("MR_small_implicit.dcm")]),
        ("-xs", vec![t("SC_rgb_jpeg_gdcm.dcm")]),
        ("-xy", vec![t("SC_rgb_jpeg_dcmtk.dcm")]),
        ("-xx", vec![t("JPEG-lossy.dcm")]),
        ("-xw", vec![t("JPEG2000.dcm")]),
        (
            "-xv",
            vec![t("MR_small_jp2klossless.dcm"), t("examples_jpeg2k.dcm")],
        ),
        ("-xr", vec![t("MR_small_RLE.dcm")]),
        ("-xt", vec![t("MR_small_jpeg_ls_lossless.dcm")]),
    ];
    let dir = temp_dir("store");
    let dir = dir.path();
    // One storescp accepts every syntax it supports (preferring explicit little endian),
    // the other prefers explicit big endian: it takes the -xb run.
    let (mut scp, port) = start_storescp("storescp-all", dir, &["+xa"]);
    let (mut scp_be, port_be) = start_storescp("storescp-big", dir, &["+xb"]);
    let cap = Capture::start("store", &[port, port_be], dir);
    let mut sent = 0;
    for (i, (opt, files)) in runs.iter().enumerate() {
        let port = if *opt == "-xb" { port_be } else { port };
        let mut args: Vec<String> = vec![
            "-v".into(),
            opt.to_string(),
            "-aet".into(),
            "STORESCU".into(),
            "-aec".into(),
            "STORESCP".into(),
            "127.0.0.1".into(),
            port.to_string(),
        ];
        args.extend(files.iter().map(|f| f.display().to_string()));
        let out = run_ok(
            &format!("storescu-{i}"),
            command("storescu", &args),
            dir,
            PEER_TIMEOUT,
        );
        assert_eq!(
            lines_with(&out.stderr, "Received Store Response (Success)"),
            files.len(),
            "storescu {opt}: every file stored\n{}",
            out.text()
        );
        sent += files.len();
    }
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));
    scp_be.stop("TERM", Duration::from_secs(5));

    let conns = analyse("store", &pcap, &[port, port_be], dir);
    assert_eq!(conns.len(), runs.len(), "one association per storescu run");
    assert_eq!(total(&conns, Side::Requestor, "C-STORE-RQ", None), sent);
    assert_eq!(total(&conns, Side::Acceptor, "C-STORE-RSP", Some(0)), sent);
    assert_eq!(
        lines_with(&scp.stderr(), "Received Store Request")
            + lines_with(&scp_be.stderr(), "Received Store Request"),
        sent,
        "{}\n{}",
        scp.output(),
        scp_be.output()
    );

    // The peeks name the very instances dcmdump reads from the files, with their
    // character sets, under every negotiated transfer syntax.
    let peeks = store_peeks("store", &conns);
    assert_eq!(peeks.len(), sent, "one data set peek per C-STORE-RQ");
    let mut expected: Vec<(String, Vec<String>)> = runs
        .iter()
        .flat_map(|(_, files)| files.iter().map(|f| file_identity(f, dir)))
        .collect();
    let mut got: Vec<(String, Vec<String>)> = peeks
        .iter()
        .map(|(u, _, cs)| (u.clone(), cs.clone()))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "SOP instances and character sets, ours vs dcmdump's"
    );
    let syntaxes: BTreeSet<&str> = peeks.iter().map(|(_, ts, _)| ts.as_str()).collect();
    for ts in [
        "1.2.840.10008.1.2",      // implicit LE
        "1.2.840.10008.1.2.1",    // explicit LE
        "1.2.840.10008.1.2.2",    // explicit BE
        "1.2.840.10008.1.2.1.99", // deflated
        "1.2.840.10008.1.2.4.70", // JPEG lossless SV1
        "1.2.840.10008.1.2.4.50", // JPEG baseline
        "1.2.840.10008.1.2.4.51", // JPEG extended
        "1.2.840.10008.1.2.4.90", // JPEG 2000 lossless
        "1.2.840.10008.1.2.4.91", // JPEG 2000
        "1.2.840.10008.1.2.5",    // RLE
        "1.2.840.10008.1.2.4.80", // JPEG-LS lossless
    ] {
        assert!(
            syntaxes.contains(ts),
            "a data set was sent in {ts}: {syntaxes:?}"
        );
    }
}

/// `storescu COMMON 127.0.0.1 PORT FILES`, to success.
fn storescu_to(common: &[&str], port: u16, files: &[PathBuf], dir: &Path) -> RunOutput {
    let cmd = support::peers::storescu_command(common, port, files);
    run_ok("storescu", cmd, dir, PEER_TIMEOUT)
}

/// A study-level C-FIND (`findscu COMMON -S`) for StudyInstanceUID, PatientName and
/// `key`, to success.
fn study_find(common: &[&str], key: &str, port: u16, dir: &Path) -> RunOutput {
    let p = port.to_string();
    let mut args: Vec<&str> = common.to_vec();
    args.push("-S");
    for k in [
        "QueryRetrieveLevel=STUDY",
        "StudyInstanceUID",
        "PatientName",
        key,
    ] {
        args.extend(["-k", k]);
    }
    args.extend(["127.0.0.1", &p]);
    run_ok("findscu", command("findscu", &args), dir, PEER_TIMEOUT)
}

#[test]
fn find_move_get_against_dcmqrscp() {
    let tools = [
        "dcmqrscp", "storescu", "findscu", "movescu", "getscu", "dcmdump", "dumpcap", "tshark",
    ];
    if !require("find_move_get_against_dcmqrscp", &tools) {
        return;
    }
    let Some((_, data)) = require_python("find_move_get_against_dcmqrscp") else {
        return;
    };
    let dir = temp_dir("qr");
    let dir = dir.path();
    // One AE (QRSCP), one move destination (MOVESCU: movescu itself).
    let move_port = free_port();
    let qr = Dcmqrscp::configure(dir, &[("MOVESCU", move_port)]);
    let port = qr.port;
    let mut scp = qr.start("dcmqrscp", dir, &["-v"]);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let (ct_uid, _) = file_identity(&files[0], dir);
    let study = {
        let out = run_ok(
            "dcmdump-study",
            command(
                "dcmdump",
                &["+P".as_ref(), "0020,000d".as_ref(), files[0].as_os_str()],
            ),
            dir,
            PEER_TIMEOUT,
        );
        let l = out.stdout.lines().next().unwrap_or("").to_string();
        l[l.find('[').expect("a value") + 1..l.find(']').expect("a value")].to_string()
    };
    let cap = Capture::start("qr", &[port, move_port], dir);
    let p = port.to_string();
    let common = ["-v", "-aet", "MOVESCU", "-aec", "QRSCP"];
    storescu_to(&common, port, &files, dir);
    let find = study_find(&common, "StudyDate", port, dir);
    let moved = dir.join("moved");
    let got = dir.join("got");
    std::fs::create_dir_all(&moved).expect("creating a directory");
    std::fs::create_dir_all(&got).expect("creating a directory");
    let study_key = format!("StudyInstanceUID={study}");
    let retrieve = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", &study_key];
    let mp = move_port.to_string();
    let md = moved.display().to_string();
    let mv = run_ok(
        "movescu",
        command(
            "movescu",
            &[
                &common[..],
                &["-aem", "MOVESCU", "--port", &mp, "-od", &md],
                &retrieve[..],
                &["127.0.0.1", &p],
            ]
            .concat(),
        ),
        dir,
        PEER_TIMEOUT,
    );
    let gd = got.display().to_string();
    let get = run_ok(
        "getscu",
        command(
            "getscu",
            &[
                &common[..],
                &["-od", &gd],
                &retrieve[..],
                &["127.0.0.1", &p],
            ]
            .concat(),
        ),
        dir,
        PEER_TIMEOUT,
    );
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));

    let conns = analyse("qr", &pcap, &[port, move_port], dir);
    // storescu, findscu, movescu (+ dcmqrscp's store sub-association to it), getscu.
    assert_eq!(
        conns.len(),
        5,
        "associations: {:?}",
        conns.iter().map(|c| c.stream).collect::<Vec<_>>()
    );
    assert_eq!(
        total(&conns, Side::Requestor, "C-STORE-RQ", None),
        3,
        "2 stores + 1 moved"
    );
    assert_eq!(
        total(&conns, Side::Acceptor, "C-STORE-RQ", None),
        1,
        "1 C-GET sub-operation"
    );
    assert_eq!(total(&conns, Side::Requestor, "C-STORE-RSP", Some(0)), 1);
    assert_eq!(
        total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0xFF00)),
        lines_with(&find.stderr, "Find Response: "),
        "pending C-FIND-RSPs vs findscu's log\n{}",
        find.text()
    );
    assert_eq!(total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0)), 1);
    assert_eq!(
        lines_with(&mv.stderr, "Received Final Move Response (Success)"),
        1,
        "{}",
        mv.text()
    );
    assert_eq!(
        total(&conns, Side::Acceptor, "C-GET-RSP", Some(0)),
        1,
        "{}",
        get.text()
    );

    // The move: destination and sub-operation counters; the sub-association is opened by
    // dcmqrscp towards movescu's port.
    let move_rq = conns
        .iter()
        .flat_map(|c| c.dimse(Side::Requestor))
        .find(|c| c.command == "C-MOVE-RQ")
        .expect("a C-MOVE-RQ");
    assert_eq!(move_rq.move_destination.as_deref(), Some("MOVESCU"));
    let final_move = conns
        .iter()
        .flat_map(|c| c.dimse(Side::Acceptor))
        .filter(|c| c.command == "C-MOVE-RSP")
        .last()
        .expect("a C-MOVE-RSP");
    let sub = final_move.sub_operations.expect("sub-operation counters");
    assert_eq!((sub.completed, sub.failed), (Some(1), Some(0)));
    let sub_assoc = conns
        .iter()
        .find(|c| c.acceptor_port == move_port)
        .expect("the C-MOVE sub-association");
    assert_eq!(
        sub_assoc.request().map(|r| r.called_ae.as_str()),
        Some("MOVESCU")
    );
    // The C-GET: role selection proposed by getscu, stored instance is CT_small.
    let get_conn = conns
        .iter()
        .find(|c| c.dimse(Side::Requestor).any(|d| d.command == "C-GET-RQ"))
        .expect("the C-GET association");
    let rq = get_conn.request().expect("an A-ASSOCIATE-RQ");
    assert!(
        rq.user_info.role_selections.iter().any(|r| r.scp),
        "getscu proposes the SCP role for storage: {:?}",
        rq.user_info.role_selections
    );
    let stored: Vec<String> = store_peeks("qr", &conns).into_iter().map(|p| p.0).collect();
    assert_eq!(
        stored.iter().filter(|u| **u == ct_uid).count(),
        3,
        "CT stored, moved, got"
    );
}

#[test]
fn storescu_and_findscu_to_orthanc() {
    let tools = [
        "Orthanc", "storescu", "findscu", "echoscu", "dcmdump", "dumpcap", "tshark",
    ];
    if !require("orthanc", &tools) {
        return;
    }
    let Some((_, data)) = require_python("orthanc") else {
        return;
    };
    let dir_guard = temp_dir("orthanc");
    let dir = dir_guard.path();
    let port = free_port();
    let mut scp = orthanc(
        dir,
        "orthanc",
        port,
        serde_json::json!({
            "DicomAlwaysAllowFind": true,
            "DicomModalities": { "dicomtap": ["DICOMTAP", "127.0.0.1", free_port()] },
        }),
    );
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        data.charset_files.join("chrX1.dcm"),
    ];
    let cap = Capture::start("orthanc", &[port], dir);
    let p = port.to_string();
    let common = ["-v", "-aet", "DICOMTAP", "-aec", "ORTHANC"];
    run_ok(
        "echoscu",
        command("echoscu", &[&common[..], &["127.0.0.1", &p]].concat()),
        dir,
        PEER_TIMEOUT,
    );
    let store = storescu_to(&common, port, &files, dir);
    assert_eq!(
        lines_with(&store.stderr, "Received Store Response (Success)"),
        files.len()
    );
    let find = study_find(&common, "SpecificCharacterSet=ISO_IR 192", port, dir);
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(10));

    let conns = analyse("orthanc", &pcap, &[port], dir);
    assert_eq!(conns.len(), 3, "echo, store, find");
    assert_eq!(total(&conns, Side::Acceptor, "C-ECHO-RSP", Some(0)), 1);
    assert_eq!(
        total(&conns, Side::Acceptor, "C-STORE-RSP", Some(0)),
        files.len()
    );
    let pending = total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0xFF00))
        + total(&conns, Side::Acceptor, "C-FIND-RSP", Some(0xFF01));
    assert_eq!(
        pending,
        lines_with(&find.stderr, "Find Response: "),
        "{}",
        find.text()
    );
    assert!(pending >= 2, "Orthanc holds at least the CT and MR studies");
    let ac = conns[0].accept().expect("Orthanc accepts");
    assert!(ac.user_info.implementation_class_uid.is_some());
    let mut stored: Vec<String> = store_peeks("orthanc", &conns)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let mut uids: Vec<String> = files.iter().map(|f| file_identity(f, dir).0).collect();
    stored.sort();
    uids.sort();
    assert_eq!(stored, uids);
    drop(scp);
}
