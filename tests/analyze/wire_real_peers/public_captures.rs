use super::*;

#[test]
fn public_captures_decode() {
    if !require("public_captures", &["tshark"]) {
        return;
    }
    let public = support::public_captures_dir();
    assert!(
        public.is_dir(),
        "{} is missing (set DICOMTAP_SHARED)",
        public.display()
    );
    let dir = temp_dir("public");
    let dir = dir.path();
    let implicit = "1.2.840.10008.1.2";
    let four: BTreeSet<&str> = [
        implicit,
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
    ]
    .into_iter()
    .collect();
    let decode = |name: &str| -> Vec<Connection> {
        let pcap = public.join(name);
        let conns = analyse(name, &pcap, &[104], dir);
        for c in &conns {
            assert_eq!(c.acceptor_port, 104, "{name}");
            assert!(
                c.sent(Side::Acceptor).next().is_none(),
                "{name}: one way only"
            );
            let rq = c.request().expect("an A-ASSOCIATE-RQ");
            let ui = &rq.user_info;
            assert_eq!(
                ui.implementation_class_uid.as_deref(),
                Some("1.2.826.0.1.3680043.9.7133.1.1")
            );
            assert_eq!(
                ui.implementation_version_name.as_deref(),
                Some("GODICOM_1_1")
            );
            assert_eq!(
                rq.application_context.as_deref(),
                Some("1.2.840.10008.3.1.1.1")
            );
        }
        conns
    };
    for (name, calling, called) in [
        (
            "tapirx-dicom_arq_1_find_testclient.pcap",
            "testclient",
            "testserver",
        ),
        (
            "tapirx-dicom_arq_3_find_bogus_local.pcap",
            "bogus_local",
            "bogus_remote",
        ),
    ] {
        let conns = decode(name);
        assert_eq!(conns.len(), 1, "{name}");
        let rq = conns[0].request().expect("an A-ASSOCIATE-RQ");
        assert_eq!(
            (rq.calling_ae.as_str(), rq.called_ae.as_str()),
            (calling, called)
        );
        assert_eq!(rq.contexts.len(), 4, "{name}: 4 query contexts");
        for ctx in &rq.contexts {
            let ts: BTreeSet<&str> = ctx.transfer_syntaxes.iter().map(String::as_str).collect();
            assert_eq!(
                ts, four,
                "{name}: context {} proposes the 4 syntaxes",
                ctx.id
            );
        }
        assert_eq!(rq.user_info.max_length, Some(4_194_304));
        assert_eq!(conns[0].bytes(Side::Requestor).len(), 677 + 6, "{name}");
    }
    for name in [
        "tapirx-dicom_arq_2_get_testclient.pcap",
        "tapirx-dicom_arq_4_get_bogus_local.pcap",
    ] {
        let conns = decode(name);
        assert_eq!(conns.len(), 1, "{name}");
        let rq = conns[0]
            .request()
            .expect("an A-ASSOCIATE-RQ split over two segments");
        assert_eq!(rq.contexts.len(), 123, "{name}");
        assert!(
            rq.user_info.role_selections.is_empty(),
            "{name}: no role selection"
        );
        assert_eq!(conns[0].bytes(Side::Requestor).len(), 16332 + 177, "{name}");
    }
    let conns = decode("ndpi-dicom.pcap");
    assert_eq!(conns.len(), 4, "ndpi: 4 flows");
    let contexts: Vec<usize> = conns
        .iter()
        .map(|c| c.request().map_or(0, |r| r.contexts.len()))
        .collect();
    assert_eq!(
        contexts.iter().filter(|n| **n == 4).count(),
        2,
        "{contexts:?}"
    );
    assert_eq!(
        contexts.iter().filter(|n| **n == 123).count(),
        2,
        "{contexts:?}"
    );
}
