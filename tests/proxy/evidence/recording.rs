use super::*;

// ---------------------------------------------------------------------------------------
// 6. Recording

#[test]
fn recording_rotates_by_size_and_keeps_the_newest() {
    let Some((_, data)) = require_peers("rotation", &["storescp", "storescu", "tshark"]) else {
        return;
    };
    let tmp = temp_dir("ev-rotate");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy(
        "proxy",
        up,
        &rec,
        &["--rotate-bytes", "30000", "--keep-files", "3"],
        dir,
    );
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    for i in 0..3 {
        storescu(&format!("storescu-{i}"), proxy.port(), &files, dir);
    }
    let status = proxy.proc.stop("TERM", Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        proxy.proc.output()
    );
    let recorded: Vec<PathBuf> = proxy
        .proc
        .stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("dicomtap proxy: recorded "))
        .map(PathBuf::from)
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    assert!(
        recorded.len() > 3,
        "rotated more often than kept: {recorded:?}"
    );
    let pcaps = recordings(&rec, "pcapng");
    let logs = recordings(&rec, "jsonl");
    assert_eq!(pcaps.len(), 3, "retention keeps 3 pairs: {pcaps:?}");
    assert_eq!(logs.len(), 3, "{logs:?}");
    // The newest ones: the last three created.
    let mut newest = recorded.clone();
    newest.sort();
    let newest = newest[newest.len() - 3..].to_vec();
    assert_eq!(pcaps, newest);
    assert_eq!(mode_of(&rec), 0o700);
    for p in &pcaps {
        assert_eq!(mode_of(p), 0o600, "{}", p.display());
        let streams = tshark_streams(p, &[up], dir);
        for (s, (starts_with_syn, _)) in &streams {
            assert!(
                starts_with_syn,
                "stream {s} of {} has no handshake of its own",
                p.display()
            );
        }
        let problems = tcp_analysis_problems(p, dir);
        assert!(problems.is_empty(), "{}: {problems:#?}", p.display());
    }
    // Rotation happened inside associations: some file continues one with a handshake.
    let with_streams = pcaps
        .iter()
        .filter(|p| !tshark_streams(p, &[up], dir).is_empty())
        .count();
    assert!(with_streams >= 2, "several kept files carry traffic");
}

#[test]
fn recording_rotates_by_age_and_keeps_each_association_whole() {
    let Some((_, data)) = require_peers("rotate_age", &["storescp", "storescu", "tshark"]) else {
        return;
    };
    let tmp = temp_dir("ev-rotate-age");
    let dir = tmp.path();
    // A slow upstream: a second per PDU, so one association spans several rotations.
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &["--sleep-during", "1"]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &["--rotate-every", "1s"], dir);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let t0 = Instant::now();
    storescu("storescu", proxy.port(), &files, dir);
    let took = t0.elapsed();
    let status = proxy.proc.stop("TERM", Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        proxy.proc.output()
    );
    assert!(took > Duration::from_secs(2), "the store took {took:?}");

    // Size never triggers (256 MiB by default): every new pair is the age limit's.
    let pcaps = recordings(&rec, "pcapng");
    let logs = recordings(&rec, "jsonl");
    assert!(
        pcaps.len() >= 3,
        "a new pair every second of a {took:?} store: {pcaps:?}"
    );
    let stems =
        |v: &[PathBuf]| -> Vec<PathBuf> { v.iter().map(|p| p.with_extension("")).collect() };
    assert_eq!(
        stems(&pcaps),
        stems(&logs),
        "capture and log rotate together"
    );
    assert_eq!(mode_of(&rec), 0o700);
    for f in pcaps.iter().chain(&logs) {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }

    let ev = events_in(&rec);
    let closed: Vec<_> = ev.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(closed.len(), 1, "one association: {closed:?}");
    assert_eq!(closed[0]["how"], "closed", "{}", closed[0]);
    assert_eq!(commands(&ev, "C-STORE-RSP").len(), 2, "{ev:?}");
    let sent = [
        closed[0]["bytes_from_requestor"].as_u64().unwrap(),
        closed[0]["bytes_from_acceptor"].as_u64().unwrap(),
    ];
    assert!(sent[0] > 0 && sent[1] > 0, "{}", closed[0]);

    // Each file stands on its own, and together they hold every byte of the association.
    let mut recorded = [0u64; 2];
    let mut files_with_traffic = 0;
    for p in &pcaps {
        let streams = tshark_streams(p, &[up], dir);
        for (s, (starts_with_syn, _)) in &streams {
            assert!(
                starts_with_syn,
                "stream {s} of {} has no handshake of its own",
                p.display()
            );
        }
        let problems = tcp_analysis_problems(p, dir);
        assert!(problems.is_empty(), "{}: {problems:#?}", p.display());
        let mut payload = 0;
        for row in support::tshark_fields(p, &[], &["tcp.dstport", "tcp.len"], dir) {
            let len: u64 = row.get(1).and_then(|l| l.parse().ok()).unwrap_or(0);
            let to_upstream = row.first().is_some_and(|d| *d == up.to_string());
            recorded[usize::from(!to_upstream)] += len;
            payload += len;
        }
        files_with_traffic += usize::from(payload > 0);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dicomtap"));
        cmd.arg("analyze")
            .arg(p)
            .arg("--json")
            .arg("--port")
            .arg(up.to_string());
        let r = run("dicomtap-analyze", cmd, dir, PEER);
        assert!(
            r.status.code().is_some_and(|c| c <= 1),
            "dicomtap analyze {}:\n{}",
            p.display(),
            r.text()
        );
    }
    assert!(
        files_with_traffic >= 2,
        "the association's bytes span several files: {pcaps:?}"
    );
    assert_eq!(
        recorded, sent,
        "bytes [to upstream, to client] in the captures vs. forwarded"
    );
}

#[test]
fn recording_both_legs_has_two_conversations_per_association() {
    let Some((_, data)) = require_peers("both_legs", &["storescp", "storescu", "tshark"]) else {
        return;
    };
    let tmp = temp_dir("ev-both");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &["--both-legs"], dir);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    storescu("storescu-1", proxy.port(), &files, dir);
    storescu("storescu-2", proxy.port(), &files, dir);
    let listen = proxy.port();
    proxy.proc.stop("TERM", Duration::from_secs(30));
    let pcap = &recordings(&rec, "pcapng")[0];
    let streams = tshark_streams(pcap, &[up, listen], dir);
    assert_eq!(
        streams.len(),
        4,
        "two associations, two legs each: {streams:?}"
    );
    let front = streams.values().filter(|s| s.1.contains(&listen)).count();
    let back = streams.values().filter(|s| s.1.contains(&up)).count();
    assert_eq!((front, back), (2, 2), "{streams:?}");
    let problems = tcp_analysis_problems(pcap, dir);
    assert!(problems.is_empty(), "{problems:#?}");
    // Both legs decode, each with every command.
    let text = tshark(
        &[
            "-r",
            pcap.to_str().unwrap(),
            "-n",
            "-d",
            &format!("tcp.port=={up},dicom"),
            "-d",
            &format!("tcp.port=={listen},dicom"),
            "-Y",
            "dicom",
        ],
        dir,
    );
    assert_eq!(
        text.matches("C-STORE-RQ").count(),
        2 * 2 * files.len(),
        "{text}"
    );
    assert_eq!(
        text.matches("C-STORE-RSP").count(),
        2 * 2 * files.len(),
        "{text}"
    );
}

#[test]
fn recording_headers_mode_keeps_commands_not_pixels() {
    let Some((_, data)) = require_peers("headers_mode", &["storescp", "storescu", "tshark"]) else {
        return;
    };
    let tmp = temp_dir("ev-headers");
    let dir = tmp.path();
    let big = dir.join("big.dcm");
    write_big_dicom(&big, 2 << 20);
    let files = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
        big,
    ];
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let mut sizes = Vec::new();
    let mut analyzed = Vec::new();
    for mode in ["full", "headers"] {
        let rec = dir.join(mode);
        let mut proxy = recording_proxy(
            &format!("proxy-{mode}"),
            up,
            &rec,
            &["--payload", mode],
            dir,
        );
        storescu(&format!("storescu-{mode}"), proxy.port(), &files, dir);
        proxy.proc.stop("TERM", Duration::from_secs(30));
        let pcap = recordings(&rec, "pcapng")[0].clone();
        sizes.push(pcap.metadata().unwrap().len());
        for cmd in ["C-STORE-RQ", "C-STORE-RSP"] {
            assert_eq!(
                tshark_dicom_count(&pcap, up, cmd, dir),
                files.len(),
                "{mode}: tshark decodes every {cmd}"
            );
        }
        let ev = events_in(&rec);
        assert_eq!(commands(&ev, "C-STORE-RQ").len(), files.len());
        let peeks = ev.iter().filter(|e| e["event"] == "dataset_peek").count();
        assert_eq!(peeks, files.len(), "{mode}: a peek per data set");
        analyzed.push(analyzed_sessions(&pcap, dir));
    }
    // The analyzer reads the headers-only recording as it reads the full one: what the
    // proxy left out on purpose is neither capture loss nor a reason to reorder streams.
    let (full_an, headers_an) = (&analyzed[0], &analyzed[1]);
    assert_eq!(full_an.len(), 1, "one association: {full_an:#?}");
    assert_eq!(full_an, headers_an, "headers vs full recording");
    let s = &headers_an[0];
    assert_eq!(s["findings"], serde_json::json!([]), "{s:#?}");
    assert_eq!(s["dimse"]["C-STORE"]["success"], files.len(), "{s:#?}");
    assert_eq!(s["ending"]["kind"], "released", "{s:#?}");
    let (full, headers) = (sizes[0], sizes[1]);
    assert!(
        full > 2 << 20,
        "the full capture holds the pixel data: {full}"
    );
    assert!(
        headers * 10 < full,
        "headers mode leaves out the pixel data: {headers} vs {full}"
    );
}

/// One numbering everywhere: with `max_associations = 1`, an echoscu while a pynetdicom
/// association is held open is rejected by the proxy (local-limit-exceeded), then another
/// one goes through. `dicomtap analyze` of the recording numbers each association as the
/// proxy's event log does (it reads the proxy's number from the packet comments).
#[test]
fn analyze_numbers_a_recording_as_the_proxy_event_log() {
    let Some((python, _)) = require_peers("numbering", &["storescp", "echoscu"]) else {
        return;
    };
    let tmp = temp_dir("ev-numbering");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let toml = format!(
        "metrics_listen = \"off\"\n[limits]\nmax_associations = 1\n\
         [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{up}\"\n\
         [recording]\ndir = \"{}\"\n",
        rec.display()
    );
    let mut proxy = configured_proxy(&toml, dir, 1, false, 2);
    let port = proxy.port();
    std::fs::write(dir.join("idle.py"), PY_IDLE).unwrap();
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("idle.py")).arg(port.to_string()).arg("4");
    let mut held = Proc::spawn("held", cmd, dir);
    assert!(
        wait_until(START, || held.stdout().contains("ECHO 0x0000")),
        "{}",
        held.output()
    );
    let echo = |name: &str| {
        run(
            name,
            command(
                "echoscu",
                &["-aet", "ECHOSCU", "127.0.0.1", &port.to_string()],
            ),
            dir,
            PEER,
        )
    };
    let refused = echo("echo-refused");
    assert!(
        !refused.status.success(),
        "over the limit: {}",
        refused.text()
    );
    assert!(
        held.wait_timeout(Duration::from_secs(30)).is_some(),
        "{}",
        held.output()
    );
    let after = echo("echo-after");
    assert!(after.status.success(), "{}", after.text());
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") >= 3),
        "{:?}",
        events_in(&rec)
    );
    proxy.proc.stop("TERM", Duration::from_secs(10));
    let ev = events_in(&rec);
    let echo_assoc = commands(&ev, "C-ECHO-RQ")
        .iter()
        .map(|c| c["assoc"].as_u64().unwrap())
        .collect::<BTreeSet<u64>>();
    assert_eq!(echo_assoc.len(), 2, "{ev:#?}");
    assert!(echo_assoc.contains(&1), "{echo_assoc:?}");
    let last = *echo_assoc.iter().max().unwrap();
    assert!(
        last >= 3,
        "the refused association took a number: {echo_assoc:?}"
    );
    let logged: BTreeSet<u64> = ev.iter().filter_map(|e| e["assoc"].as_u64()).collect();
    assert_eq!(logged.len(), 3, "{ev:#?}");
    let pcap = recordings(&rec, "pcapng")[0].clone();
    let out = run(
        "analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--json", pcap.to_str().unwrap()],
        ),
        dir,
        PEER,
    );
    let ids: BTreeSet<u64> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "session")
        .map(|v| v["session"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        logged,
        "analyze numbers as the event log: {}",
        out.text()
    );
    assert!(echo_assoc.is_subset(&ids), "{echo_assoc:?} {ids:?}");
}
