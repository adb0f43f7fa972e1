use super::*;

// ---------------------------------------------------------------------------------------
// dataset-encoding-differs

#[test]
fn implicit_vr_data_on_an_explicit_vr_context_is_reported_for_the_sender() {
    let Some((scene, py, data)) = conformance_scene("encoding", &["storescp", "dumpcap"]) else {
        return;
    };
    // The same Implicit VR data set, once labelled Explicit VR Little Endian (so pynetdicom
    // proposes and sends it on an Explicit VR context), once labelled correctly.
    let (wrong, right) = (
        scene.path().join("ct-implicit-as-explicit.dcm"),
        scene.path().join("ct-implicit.dcm"),
    );
    let src = data.test_files.join("CT_small.dcm");
    data_run(
        &scene,
        &py,
        "mislabel",
        &[
            "mislabel",
            src.to_str().unwrap(),
            wrong.to_str().unwrap(),
            right.to_str().unwrap(),
        ],
    );
    scene.statement("sender.toml", &ct_sender_statement());
    let port = free_port();
    let scp = scene.storescp(port, &[]);
    let send = |name: &str, file: &Path| {
        // storescp cannot read the mislabelled data set: the exchange may fail, the
        // traffic is what matters.
        let (out, capture) = send_captured(&scene, &py, name, port, file, "0");
        assert!(out.stdout.contains("stored"), "{}", out.text());
        (scene.analyze(&capture).0, capture)
    };
    let (bad, bad_capture) = send("encoding-wrong", &wrong);
    let (good, _) = send("encoding-right", &right);
    drop(scp);

    let f = one_of_rule(&bad, "dataset-encoding-differs", "PY_SENDER");
    assert_eq!(
        text(&f["claim"]),
        "data encoded in the negotiated transfer syntax ExplicitVRLittleEndian"
    );
    assert!(
        text(&f["observed"]).contains("encoded as ImplicitVrLittleEndian"),
        "{f}"
    );
    assert_eq!(f["severity"], "error");
    assert_evidence(&f, &bad_capture, port, Some("requestor"));
    assert_eq!(f["evidence"]["message_id"], 1);
    assert_eq!(f["evidence"]["sop_instance"], CT_SMALL_INSTANCE);
    // Correctly labelled, the same bytes conform.
    assert_not_raised(&good, "dataset-encoding-differs");
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}

// ---------------------------------------------------------------------------------------
// private-transfer-syntax-undocumented

const PRIVATE_TS: &str = "1.3.6.1.4.1.99999.7.1";

#[test]
fn a_private_transfer_syntax_is_reported_unless_documented() {
    let Some((scene, py, _)) = conformance_scene("private-ts", &["dumpcap"]) else {
        return;
    };
    let port = free_port();
    let p = port.to_string();
    let scp = data_peer(
        &scene,
        &py,
        "private-scp",
        port,
        &["private-scp", &p, PRIVATE_TS],
    );
    let mut out = String::new();
    let capture = scene.capture("private-ts", &[port], || {
        out = data_run(
            &scene,
            &py,
            "private-scu",
            &["private-scu", &p, "PRIVSCP", "PRIVSCU", PRIVATE_TS],
        );
    });
    drop(scp);
    assert!(
        out.contains(&format!("accepted 1.2.840.10008.5.1.4.1.1.2 {PRIVATE_TS}")),
        "the private syntax was not negotiated:\n{out}"
    );

    // The vendor's two AEs: CT Image Storage in `ts`, Verification as pynetdicom has it.
    let vendor = |device: &str, title: &str, side: &str, role: &str, ts: &str, tail: &str| {
        statement(
            device,
            title,
            &format!("{side} = true"),
            &[("CTImageStorage", role, ts), ("Verification", role, PY_TS)],
            tail,
        )
    };
    let scu = |ts: &str, tail: &str| vendor("VENDOR_SCU", "PRIVSCU", "initiator", "SCU", ts, tail);
    let scp_st =
        |ts: &str, tail: &str| vendor("VENDOR_SCP", "PRIVSCP", "acceptor", "SCP", ts, tail);
    // Statements that do not document the UID.
    scene.statement("scu.toml", &scu("[\"ExplicitVRLittleEndian\"]", ""));
    scene.statement("scp.toml", &scp_st("[\"ExplicitVRLittleEndian\"]", ""));
    let (findings, _, junit) = scene.analyze(&capture);
    let undocumented = |device: &str, verb: &str, from: &str| {
        let f = with(&findings, "private-transfer-syntax-undocumented", device);
        assert_eq!(f.len(), 1, "{}", dump(&findings));
        assert_eq!(
            text(&f[0]["observed"]),
            format!(
                "{verb} unregistered transfer syntax {PRIVATE_TS} for CTImageStorage (context 1)"
            )
        );
        assert_evidence(&f[0], &capture, port, Some(from));
        f[0].clone()
    };
    let proposed = undocumented("VENDOR_SCU", "proposed", "requestor");
    assert_eq!(proposed["claim"], "private_uids: no entry for this UID");
    undocumented("VENDOR_SCP", "accepted", "acceptor");
    assert_eq!(
        of_rule(&findings, "private-transfer-syntax-undocumented").len(),
        2,
        "{}",
        dump(&findings)
    );
    assert!(
        junit.contains("<failure type=\"private-transfer-syntax-undocumented\""),
        "{junit}"
    );

    // Documented as a private UID and claimed: nothing at all.
    let private = format!(
        "[private_uids]\n\"{PRIVATE_TS}\" = {{ private = true, name = \"Vendor fast\" }}\n"
    );
    let claimed = format!("[\"{PRIVATE_TS}\", \"ExplicitVRLittleEndian\"]");
    scene.statement("scu.toml", &scu(&claimed, &private));
    scene.assert_conforms("scp.toml", &scp_st(&claimed, &private), &capture);
}

// ---------------------------------------------------------------------------------------
// pdu-exceeds-peer-max

#[test]
fn a_sender_ignoring_the_peers_max_length_is_reported() {
    let Some((scene, py, data)) = conformance_scene("peer-max", &["storescp", "dumpcap"]) else {
        return;
    };
    scene.statement("sender.toml", &ct_sender_statement());
    let port = free_port();
    // storescp advertises Max Length 8192.
    let scp = scene.storescp(port, &["--max-pdu", "8192"]);
    let file = data.test_files.join("CT_small.dcm");
    let send = |name: &str, pdu: &str| {
        let (out, capture) = send_captured(&scene, &py, name, port, &file, pdu);
        (scene.analyze(&capture).0, out, capture)
    };
    // 32768-byte P-DATA-TF PDUs, whatever storescp advertised.
    let (bad, out, bad_capture) = send("peer-max-over", "32768");
    // pynetdicom's own sizing.
    let (good, good_out, _) = send("peer-max-ok", "0");
    drop(scp);

    assert_eq!(
        with(&bad, "pdu-exceeds-peer-max", "PY_SENDER").len(),
        1,
        "{}\n{}",
        dump(&bad),
        out.text()
    );
    let f = one_of_rule(&bad, "pdu-exceeds-peer-max", "PY_SENDER");
    assert_eq!(f["claim"], "P-DATA-TF no larger than the peer's Max Length");
    assert_eq!(
        text(&f["observed"]),
        "sent a P-DATA-TF of 32768 bytes; the acceptor advertised Max Length 8192"
    );
    assert_eq!(f["severity"], "error");
    assert_evidence(&f, &bad_capture, port, Some("requestor"));
    assert!(
        good_out.stdout.contains("stored 0000"),
        "{}",
        good_out.text()
    );
    assert_not_raised(&good, "pdu-exceeds-peer-max");
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}

// ---------------------------------------------------------------------------------------
// pdu-exceeds-claimed-max-send

#[test]
fn storescu_sending_larger_pdus_than_claimed_is_reported() {
    let Some((scene, _, data)) =
        conformance_scene("max-send", &["storescu", "storescp", "dumpcap"])
    else {
        return;
    };
    scene.statement(
        "storescu.toml",
        &statement(
            "DCMTK_STORESCU",
            "STORESCU",
            &format!(
                "initiator = true\nmax_pdu_send = 8192\nprivate_creators = {GEMS}\ncharacter_sets = [\"ISO_IR 100\"]"
            ),
            &[("CTImageStorage", "SCU", ALL_TS)],
            "",
        ),
    );
    let port = free_port();
    // storescp advertises its default 16384; storescu fills it.
    let scp = scene.storescp(port, &[]);
    let file = data.test_files.join("CT_small.dcm");
    let send = |name: &str, extra: &[&str]| {
        let capture = scene.capture(name, &[port], || {
            scene.storescu(port, "STORESCU", extra, std::slice::from_ref(&file))
        });
        (scene.analyze(&capture).0, capture)
    };
    let (bad, bad_capture) = send("max-send-over", &[]);
    let (good, _) = send("max-send-ok", &["--max-send-pdu", "8192"]);
    drop(scp);

    let f = one_of_rule(&bad, "pdu-exceeds-claimed-max-send", "DCMTK_STORESCU");
    assert_eq!(f["claim"], "max_pdu_send = 8192");
    // DCMTK fills the peer's 16384 less the 6 bytes of the PDV item header.
    let size: u32 = text(&f["observed"])
        .strip_prefix("sent a P-DATA-TF of ")
        .and_then(|s| s.strip_suffix(" bytes"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{f}"));
    assert!((8193..=16384).contains(&size), "{f}");
    assert_eq!(f["severity"], "warning");
    assert_evidence(&f, &bad_capture, port, Some("requestor"));
    // Within the peer's maximum: only the statement's own limit was exceeded.
    assert_not_raised(&bad, "pdu-exceeds-peer-max");
    assert!(
        good.is_empty(),
        "conforming traffic raised:\n{}",
        dump(&good)
    );
}
