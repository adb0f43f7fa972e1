use super::*;

#[test]
fn idle_association_is_aborted_after_the_idle_timeout() {
    let Some((python, _)) = require_peers("idle_timeout", &["storescp"]) else {
        return;
    };
    let tmp = temp_dir("ev-idle");
    let dir = tmp.path();
    let (scp, up) = storescp("storescp", &dir.join("in"), dir, &["-v"]);
    let rec = dir.join("rec");
    let proxy = recording_proxy("proxy", up, &rec, &["--idle-timeout", "1s"], dir);
    std::fs::write(dir.join("idle.py"), PY_IDLE).unwrap();
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("idle.py"))
        .arg(proxy.port().to_string())
        .arg("8");
    let started = Instant::now();
    let out = run_ok("idle", cmd, dir, PEER);
    let took = started.elapsed();
    assert!(out.stdout.contains("ECHO 0x0000"), "{}", out.text());
    assert!(
        out.stdout.contains("ABORTED"),
        "the client got an A-ABORT:\n{}",
        out.text()
    );
    assert!(
        took < Duration::from_secs(7),
        "aborted after about 1 s, not at the end: {took:?}"
    );
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "closed") == 1),
        "{:?}",
        events_in(&rec)
    );
    let ev = events_in(&rec);
    let aborts: BTreeSet<String> = ev
        .iter()
        .filter(|e| e["event"] == "proxy_abort" && e["why"] == "idle timeout")
        .map(|e| e["to"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        aborts,
        ["acceptor".to_string(), "requestor".to_string()].into(),
        "A-ABORT to both sides"
    );
    let closed = ev.iter().find(|e| e["event"] == "closed").unwrap();
    assert_eq!(closed["how"], "idle timeout");

    // An association that keeps talking outlives the timeout.
    let mut cmd = Command::new(&python);
    cmd.arg(dir.join("idle.py"))
        .arg(proxy.port().to_string())
        .arg("3")
        .arg("busy");
    let out = run_ok("busy", cmd, dir, PEER);
    assert!(
        out.stdout.contains("ALIVE"),
        "not aborted while busy:\n{}",
        out.text()
    );
    // storescp saw the abort too.
    assert!(
        wait_until(Duration::from_secs(5), || scp.output().contains("Abort")),
        "{}",
        scp.output()
    );
}

#[test]
fn sigterm_lets_an_association_in_progress_finish() {
    let Some((_, data)) = require_peers("sigterm_drain", &["storescp", "storescu", "echoscu"])
    else {
        return;
    };
    let tmp = temp_dir("ev-drain");
    let dir = tmp.path();
    // A slow upstream: a second per PDU, so CT_small takes several seconds.
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &["--sleep-during", "1"]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &["--drain", "30s"], dir);
    let port = proxy.port();
    let files = [data.test_files.join("CT_small.dcm")];
    let mut scu = Proc::spawn("storescu", storescu_command(port, &files), dir);
    assert!(
        wait_events(&rec, START, |ev| count_event(ev, "associate_ac") == 1),
        "the association did not start: {:?}",
        events_in(&rec)
    );
    assert!(
        scu.try_wait().is_none(),
        "the store is still in progress at SIGTERM"
    );
    let t0 = Instant::now();
    proxy.proc.signal("TERM");
    assert!(
        wait_until(Duration::from_secs(5), || proxy
            .proc
            .stdout()
            .contains("shutting down")),
        "{}",
        proxy.proc.output()
    );
    // No new associations once draining.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the proxy still accepts during the drain"
    );
    let status = scu.wait_timeout(PEER);
    assert!(
        status.is_some_and(|s| s.success()),
        "the association in progress completes: {}",
        scu.output()
    );
    let exit = proxy.proc.wait_timeout(Duration::from_secs(30));
    assert!(exit.is_some_and(|s| s.success()), "{}", proxy.proc.output());
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "within the drain time"
    );
    let out = proxy.proc.stdout();
    assert!(out.contains("0 cut at drain"), "{out}");
    let ev = events_in(&rec);
    assert_eq!(commands(&ev, "C-STORE-RSP").len(), 1);
    assert_eq!(count_event(&ev, "release_rp"), 1, "{ev:?}");
    let closed: Vec<_> = ev.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(
        closed[0]["how"], "closed",
        "released, not cut: {}",
        closed[0]
    );

    // A drain too short for the association in progress: it is cut, and says so.
    let big = dir.join("big.dcm");
    write_big_dicom(&big, 1 << 20);
    let rec2 = dir.join("rec-cut");
    let mut proxy = recording_proxy("proxy-cut", up, &rec2, &["--drain", "1s"], dir);
    let mut scu = Proc::spawn("storescu-cut", storescu_command(proxy.port(), &[big]), dir);
    assert!(
        wait_events(&rec2, START, |ev| count_event(ev, "associate_ac") == 1),
        "the association did not start: {:?}",
        events_in(&rec2)
    );
    let t0 = Instant::now();
    proxy.proc.signal("TERM");
    let exit = proxy.proc.wait_timeout(Duration::from_secs(20));
    assert!(exit.is_some_and(|s| s.success()), "{}", proxy.proc.output());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the drain ends after 1 s: {:?}",
        t0.elapsed()
    );
    assert!(
        proxy.proc.stdout().contains("1 cut at drain"),
        "{}",
        proxy.proc.output()
    );
    let status = scu.wait_timeout(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "storescu learns that its association was cut: {}",
        scu.output()
    );
    let ev = events_in(&rec2);
    let closed: Vec<_> = ev.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(
        closed.len(),
        1,
        "the cut association has its closed event: {:?}",
        ev.iter().map(|e| e["event"].clone()).collect::<Vec<_>>()
    );
    assert_eq!(closed[0]["how"], "cut at drain", "{}", closed[0]);
    // The client's direction was mid-PDU (a data set streaming), the upstream's between
    // PDUs: the client gets the A-ABORT.
    assert!(
        ev.iter().any(|e| e["event"] == "proxy_abort"
            && e["to"] == "requestor"
            && e["why"] == "cut at drain"),
        "{ev:?}"
    );
}

#[test]
fn kill_9_leaves_a_readable_recording() {
    let Some((_, data)) = require_peers("kill_9", &["storescp", "storescu", "tshark"]) else {
        return;
    };
    let tmp = temp_dir("ev-kill9");
    let dir = tmp.path();
    let (_scp, up) = storescp("storescp", &dir.join("in"), dir, &[]);
    let rec = dir.join("rec");
    let mut proxy = recording_proxy("proxy", up, &rec, &[], dir);
    let one = [
        data.test_files.join("CT_small.dcm"),
        data.test_files.join("MR_small.dcm"),
    ];
    let many: Vec<PathBuf> = one.iter().cycle().take(400).cloned().collect();
    let mut scu = Proc::spawn("storescu", storescu_command(proxy.port(), &many), dir);
    let pcap = proxy
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "pcapng"))
        .cloned()
        .expect("a pcapng");
    assert!(
        wait_until(START, || pcap.metadata().map(|m| m.len()).unwrap_or(0)
            > 1 << 20),
        "nothing recorded"
    );
    assert!(
        scu.try_wait().is_none(),
        "traffic is still flowing at the kill"
    );
    proxy.proc.stop("KILL", Duration::from_secs(5));
    let _ = scu.wait_timeout(Duration::from_secs(10));

    let read = run(
        "tshark-read",
        command(
            "tshark",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-n",
                "-d",
                &format!("tcp.port=={up},dicom"),
            ],
        ),
        dir,
        PEER,
    );
    assert!(
        read.status.success() || read.stderr.contains("cut short in the middle of a packet"),
        "tshark reads the capture left by kill -9:\n{}",
        read.stderr
    );
    let frames = read.stdout.lines().count();
    let problems = tcp_analysis_problems(&pcap, dir);
    assert!(problems.is_empty(), "{problems:#?}");
    // The event log beside it: whole lines only.
    let log = proxy
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "jsonl"))
        .expect("a jsonl");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the log ends with a whole line"
    );
    for line in text.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{line}"
        );
    }
    assert!(frames > 10, "{}", read.text());
    assert!(
        read.stdout.contains("C-STORE-RQ"),
        "tshark decodes DICOM in it"
    );
    let analyze = run(
        "analyze",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--json", pcap.to_str().unwrap()],
        ),
        dir,
        PEER,
    );
    let sessions: Vec<serde_json::Value> = analyze
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "session")
        .collect();
    // A clean end (whole blocks were written), or a cut-short last record that is named.
    let clean = analyze.status.success();
    let cut = analyze.status.code() == Some(2) && analyze.stderr.contains("is truncated");
    assert!(
        !sessions.is_empty() && (clean || cut),
        "dicomtap analyze reads the capture up to its last complete packet:\n{}",
        analyze.text()
    );
    eprintln!(
        "kill -9: tshark exit {:?}, analyze exit {:?}, {} sessions, {frames} frames",
        read.status.code(),
        analyze.status.code(),
        sessions.len()
    );
}
