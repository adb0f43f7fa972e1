use super::*;

/// A TCP peer that reads and discards whatever it gets, for `conns` connections.
fn sink_upstream(conns: usize) -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut s, _)) = l.accept() else { return };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = vec![0u8; 64 * 1024];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    (port, h)
}

#[test]
fn floods_of_tiny_pdus_and_odd_contexts_do_not_amplify_the_event_log() {
    let tmp = temp_dir("hostile-log");
    let dir = tmp.path();
    let (up, sink) = sink_upstream(2);
    let p = proxy_to(dir, "proxy", up, "max_associations = 4");
    let addr = SocketAddr::from(([127, 0, 0, 1], p.ports[0]));

    // 1. 2 MiB of 12-byte P-DATA-TF PDUs (one 2-byte PDV each), no association first.
    let pdu = [0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 3];
    let flood: Vec<u8> = pdu.iter().copied().cycle().take(12 * 174_762).collect();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&flood).unwrap();
    drop(s);

    // 2. An A-ASSOCIATE-RQ with 10,000 presentation contexts, each with an even id and
    // an abstract syntax that is not a UID, and no transfer syntax.
    let mut items = Vec::new();
    items.extend_from_slice(&[0x10, 0, 0, 21]);
    items.extend_from_slice(b"1.2.840.10008.3.1.1.1");
    for i in 0..10_000u32 {
        let sub = b"not-a-uid";
        let len = 4 + 4 + sub.len();
        items.extend_from_slice(&[0x20, 0]);
        items.extend_from_slice(&(len as u16).to_be_bytes());
        items.extend_from_slice(&[((i % 127) * 2) as u8, 0, 0, 0]);
        items.extend_from_slice(&[0x30, 0]);
        items.extend_from_slice(&(sub.len() as u16).to_be_bytes());
        items.extend_from_slice(sub);
    }
    let rq = associate_rq("FLOOD", "ANY-SCP", &items);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&rq).unwrap();
    drop(s);
    let traffic = (flood.len() + rq.len()) as u64;

    assert!(wait_until(Duration::from_secs(60), || {
        let m = http_get(p.metrics, "/metrics", None);
        // Both analyses ended (each observes its line count last).
        metric(&m, "dicomtap_event_log_lines_per_association_count") == 2.0
    }));
    let m = http_get(p.metrics, "/metrics", None);
    assert!(
        metric(
            &m,
            "dicomtap_event_log_suppressed_total{reason=\"small_p_data\"}"
        ) > 100_000.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "dicomtap_event_log_suppressed_total{reason=\"repeated_finding\"}"
        ) > 0.0,
        "{m}"
    );
    let (events, log_bytes, captures) = stop(p);
    let _ = sink.join();

    // Before: the flood alone made ~38 times its size in JSON lines, and the
    // A-ASSOCIATE-RQ's line listed its 10,000 contexts (three times the RQ's size).
    assert!(
        log_bytes * 20 < traffic,
        "{log_bytes} bytes of event log for {traffic} bytes of traffic"
    );
    let rq_line = events
        .iter()
        .find(|e| e["event"] == "associate_rq")
        .expect("the A-ASSOCIATE-RQ is logged");
    assert_eq!(rq_line["contexts"].as_array().map(Vec::len), Some(256));
    let mut by_assoc: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        by_assoc
            .entry(e["assoc"].as_u64().unwrap())
            .or_default()
            .push(e);
    }
    assert_eq!(by_assoc.len(), 2);
    for (id, evs) in &by_assoc {
        let mut per_code: BTreeMap<&str, usize> = BTreeMap::new();
        for e in evs.iter().filter(|e| e["event"] == "finding") {
            *per_code.entry(e["code"].as_str().unwrap()).or_default() += 1;
        }
        assert!(!per_code.is_empty(), "association {id} has no findings");
        assert!(per_code.values().all(|&n| n <= 10), "{id}: {per_code:?}");
        let small = evs
            .iter()
            .filter(|e| e["event"] == "p_data" && e["pdu_length"].as_u64() < Some(1018))
            .count();
        assert!(small <= 10, "{id}: {small} small p_data lines");
        // One summary, just before the one `closed`, with the counts held back.
        let kinds: Vec<&str> = evs.iter().filter_map(|e| e["event"].as_str()).collect();
        let at = kinds
            .iter()
            .position(|k| *k == "events_suppressed")
            .expect("summary");
        assert_eq!(
            kinds.iter().filter(|k| **k == "events_suppressed").count(),
            1
        );
        assert_eq!(kinds.get(at + 1), Some(&"closed"), "{id}: {kinds:?}");
        let s = evs[at];
        let held: u64 = s["findings"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert!(held > 0, "{s}");
        if *id == by_assoc.keys().next().copied().unwrap() {
            let bytes: usize = evs.iter().map(|e| e.to_string().len()).sum();
            assert!(
                bytes < 64 * 1024,
                "{bytes} bytes logged for the P-DATA flood"
            );
            assert_eq!(s["small_p_data"], 174_762 - 10, "{s}");
            assert_eq!(s["small_p_data_bytes"], 12 * (174_762 - 10), "{s}");
        } else {
            assert_eq!(s["contexts_not_logged"], 10_000 - 256, "{s}");
        }
    }

    // `dicomtap analyze` of the recording: the same per-kind bound in its sessions and
    // in its detail view, each code's remainder counted.
    assert_eq!(captures.len(), 1, "{captures:?}");
    let cap = captures[0].to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_dicomtap");
    let out = run_ok(
        "analyze-json",
        command(bin, &["analyze", "--json", cap]),
        dir,
        Duration::from_secs(120),
    );
    let sessions: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "session")
        .map(|v| v["session"].clone())
        .collect();
    assert_eq!(sessions.len(), 2, "{}", out.stdout);
    assert!(
        out.stdout.len() < 128 * 1024,
        "{} bytes of sessions for {traffic} bytes of traffic",
        out.stdout.len()
    );
    for s in &sessions {
        let mut per_code: BTreeMap<&str, u64> = BTreeMap::new();
        for f in s["findings"].as_array().unwrap() {
            *per_code.entry(f["code"].as_str().unwrap()).or_default() += 1;
        }
        assert!(per_code.values().all(|&n| n <= 10), "{per_code:?}");
        let repeated = s["findings_repeated"].as_object().unwrap();
        assert!(!repeated.is_empty(), "{}", s["findings_repeated"]);
        for (code, r) in repeated {
            assert_eq!(per_code.get(code.as_str()), Some(&10), "{code}: {r}");
            assert!(r["count"].as_u64() > Some(0), "{code}: {r}");
        }
    }
    let rq = sessions
        .iter()
        .find(|s| s["contexts_dropped"].as_u64() > Some(0))
        .expect("the 10,000-context association");
    assert_eq!(rq["contexts"].as_array().map(Vec::len), Some(256));
    assert_eq!(rq["contexts_dropped"], 10_000 - 256);
    let id = rq["id"].to_string();
    let detail = run_ok(
        "analyze-detail",
        command(bin, &["analyze", "--detail", &id, cap]),
        dir,
        Duration::from_secs(120),
    );
    let lines = detail.stdout.lines().count();
    assert!(lines < 1000, "{lines} lines of detail");
    assert!(
        detail
            .stdout
            .contains("no answer seen to 10000 proposed ctx")
            && detail
                .stdout
                .contains("... and 9744 more contexts, not listed")
            && detail
                .stdout
                .contains("more error findings of code bad_context_id"),
        "{}",
        detail.stdout
    );
}

/// One P-DATA-TF PDU of 100,000 two-byte PDVs (600 kB): its event-log line listed every
/// PDV (5 MB), as did its line in `analyze --detail` (1.8 MB). Both list the first 64.
#[test]
fn a_pdu_of_many_tiny_pdvs_is_not_listed_pdv_by_pdv() {
    let tmp = temp_dir("hostile-pdvs");
    let dir = tmp.path();
    let (up, sink) = sink_upstream(1);
    let p = proxy_to(dir, "proxy", up, "max_associations = 4");
    let pdv = [0u8, 0, 0, 2, 1, 3];
    let body: Vec<u8> = pdv.iter().copied().cycle().take(6 * 100_000).collect();
    let mut pdu = vec![0x04, 0];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&body);
    let mut s = TcpStream::connect(("127.0.0.1", p.ports[0])).unwrap();
    s.write_all(&pdu).unwrap();
    drop(s);
    assert!(wait_until(Duration::from_secs(60), || {
        let m = http_get(p.metrics, "/metrics", None);
        metric(&m, "dicomtap_event_log_lines_per_association_count") == 1.0
    }));
    let (events, log_bytes, captures) = stop(p);
    let _ = sink.join();
    assert!(
        log_bytes * 20 < pdu.len() as u64,
        "{log_bytes} bytes of event log for a {} byte PDU",
        pdu.len()
    );
    let line = events
        .iter()
        .find(|e| e["event"] == "p_data")
        .expect("the PDU is logged");
    assert_eq!(line["pdvs"].as_array().map(Vec::len), Some(64), "{line}");
    let summary = events
        .iter()
        .find(|e| e["event"] == "events_suppressed")
        .expect("a summary");
    assert_eq!(summary["pdvs_not_logged"], 100_000 - 64, "{summary}");

    assert_eq!(captures.len(), 1, "{captures:?}");
    let out = run_ok(
        "analyze-detail",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--detail", "1", captures[0].to_str().unwrap()],
        ),
        dir,
        Duration::from_secs(120),
    );
    let longest = out.stdout.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 8 * 1024, "a detail line of {longest} bytes");
    assert!(
        out.stdout.contains("... and 99936 more PDVs"),
        "{}",
        out.stdout
    );
}
