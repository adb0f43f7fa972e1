use super::*;

#[test]
fn echoscu_to_storescp_and_the_pdu_command() {
    if !require(
        "echoscu_to_storescp",
        &["echoscu", "storescp", "dumpcap", "tshark"],
    ) {
        return;
    }
    let dir = temp_dir("echo");
    let dir = dir.path();
    let (mut scp, port) = start_storescp("storescp", dir, &[]);
    let cap = Capture::start("echo", &[port], dir);
    let echo = run_ok(
        "echoscu",
        command(
            "echoscu",
            &[
                "-v",
                "-aet",
                "ECHOSCU",
                "-aec",
                "STORESCP",
                "127.0.0.1",
                &port.to_string(),
            ],
        ),
        dir,
        PEER_TIMEOUT,
    );
    let pcap = cap.finish();
    scp.stop("TERM", Duration::from_secs(5));

    let conns = analyse("echo", &pcap, &[port], dir);
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    let rq = c.request().expect("an A-ASSOCIATE-RQ");
    assert_eq!(
        (rq.calling_ae.as_str(), rq.called_ae.as_str()),
        ("ECHOSCU", "STORESCP")
    );
    assert_eq!(c.pdu_types(Side::Requestor), [1, 4, 5]);
    assert_eq!(c.pdu_types(Side::Acceptor), [2, 4, 6]);
    assert_eq!(
        c.commands(Side::Requestor),
        [("C-ECHO-RQ".to_string(), None)]
    );
    assert_eq!(
        c.commands(Side::Acceptor),
        [("C-ECHO-RSP".to_string(), Some(0))]
    );
    let rsp = c.dimse(Side::Acceptor).next().expect("a response");
    assert_eq!(rsp.responded_to, Some(1));
    assert_eq!(
        lines_with(&echo.stderr, "Received Echo Response (Success)"),
        1
    );
    assert_eq!(
        lines_with(&scp.stderr(), "Received Echo Request"),
        1,
        "{}",
        scp.output()
    );
    // Latency of the response is measured from the capture's timestamps.
    let latency = c
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Command(cmd) if e.from == Side::Acceptor => cmd.latency_us,
            _ => None,
        })
        .expect("the C-ECHO-RSP carries a latency");
    assert!(latency < 10_000_000, "latency {latency} us");
    assert!(
        c.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::StreamEnd { .. })),
        "the FINs are seen as stream ends"
    );

    // The `dicomtap pdu` command on the same bytes: its JSON is exactly the engine's
    // events for a whole-stream feed, in both input forms.
    let exe = env!("CARGO_BIN_EXE_dicomtap");
    for (side, hex) in [(Side::Requestor, false), (Side::Acceptor, true)] {
        let bytes = c.bytes(side);
        let file = dir.join(format!("{side}.{}", if hex { "hex" } else { "bin" }));
        if hex {
            let text: Vec<String> = bytes.chunks(16).map(hex_encode).collect();
            std::fs::write(&file, text.join("\n")).expect("writing the hex stream");
        } else {
            std::fs::write(&file, &bytes).expect("writing the stream");
        }
        let mut args = vec![
            "pdu".to_string(),
            file.display().to_string(),
            "--json".into(),
            "--from".into(),
            side.to_string(),
        ];
        if hex {
            args.push("--hex".into());
        }
        let out = run_ok("dicomtap-pdu", command(exe, &args), dir, PEER_TIMEOUT);
        let got: Vec<serde_json::Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line of --json is JSON"))
            .collect();
        let expected: Vec<serde_json::Value> = replay(
            &[
                Action::Feed(side, 0, bytes.clone()),
                Action::End(side, 0, StreamEnd::Close),
            ],
            EngineConfig::default(),
            None,
        )
        .iter()
        .map(|e| serde_json::to_value(e).expect("events serialize"))
        .collect();
        assert_eq!(got, expected, "dicomtap pdu --json on the {side} stream");
        let kinds: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
        let want = match side {
            Side::Requestor => ["associate_rq", "command", "release_rq"],
            Side::Acceptor => ["associate_ac", "command", "release_rp"],
        };
        for k in want {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        // And as text.
        args.retain(|a| a != "--json");
        let text = run_ok("dicomtap-pdu-text", command(exe, &args), dir, PEER_TIMEOUT);
        let name = if side == Side::Requestor {
            "C-ECHO-RQ"
        } else {
            "C-ECHO-RSP"
        };
        assert!(text.stdout.contains(name), "{}", text.text());
    }
}

#[test]
fn pdu_command_input_errors() {
    let dir = temp_dir("pdu-errors");
    let dir = dir.path();
    let exe = env!("CARGO_BIN_EXE_dicomtap");
    let missing = dir.join("no-such-stream.bin");
    let out = run(
        "pdu-missing",
        command(exe, &["pdu".as_ref(), missing.as_os_str()]),
        dir,
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr.contains("no-such-stream.bin"), "{}", out.text());

    let odd = dir.join("odd.hex");
    std::fs::write(&odd, "01 00 00 00 00 0").expect("writing the hex file");
    let out = run(
        "pdu-odd",
        command(exe, &["pdu".as_ref(), odd.as_os_str(), "--hex".as_ref()]),
        dir,
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(
        out.stderr.contains("odd.hex") && out.stderr.contains("byte offset"),
        "the error names the file and the offset: {}",
        out.text()
    );
    assert!(out.stdout.is_empty(), "{}", out.text());

    let bad = dir.join("bad.hex");
    std::fs::write(&bad, "01 00 zz").expect("writing the hex file");
    let out = run(
        "pdu-bad",
        command(exe, &["pdu".as_ref(), bad.as_os_str(), "--hex".as_ref()]),
        dir,
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(
        out.stderr.contains("bad.hex") && out.stderr.contains("byte offset 6"),
        "{}",
        out.text()
    );
}
