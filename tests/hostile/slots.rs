use super::*;

#[test]
fn trickling_clients_neither_lock_out_storescu_nor_stay_forever() {
    if !require(
        "trickling_clients_neither_lock_out_storescu_nor_stay_forever",
        &["storescp", "storescu"],
    ) {
        return;
    }
    let Some((_, data)) = require_python("trickling_clients") else {
        return;
    };
    let tmp = temp_dir("hostile-trickle");
    let dir = tmp.path();
    // --fork: the admitted tricklers reach storescp too, which serves one association at
    // a time otherwise.
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &["--fork"]);
    // Five slots, so at most three for one source; the RQ must be whole 6 s after accept.
    let p = proxy_to(
        dir,
        "proxy",
        scp_port,
        "max_associations = 5\nassociate_rq_timeout = \"6s\"",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], p.ports[0]));

    // Five clients from 127.0.0.2 sending their A-ASSOCIATE-RQ a byte every 500 ms (it
    // would take 37 s): before, they held all five slots for as long as they liked.
    let tricklers: Vec<_> = (0..5)
        .map(|_| {
            let s = connect_from([127, 0, 0, 2], addr);
            std::thread::spawn(move || {
                trickle(s, Duration::from_millis(500), Duration::from_secs(20))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));

    // A real storescu from 127.0.0.1 gets a slot while they trickle.
    let file = data.test_files.join("CT_small.dcm");
    let t = Instant::now();
    let r = run(
        "storescu",
        storescu_command(&["-aec", "ANY-SCP"], p.ports[0], &[file]),
        dir,
        Duration::from_secs(60),
    );
    assert!(r.status.success(), "storescu: {}", r.text());
    // ... well before the deadline that would have freed the slots anyway.
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "storescu waited {:?}",
        t.elapsed()
    );

    // Three were admitted and closed at the deadline with nothing sent (PS3.8 AA-2);
    // two were over the per-source limit and got A-ASSOCIATE-RJ (transient, service
    // provider, local-limit-exceeded) once the deadline for their RQ was over.
    let rj = [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2];
    let mut outcomes: Vec<(Vec<u8>, Duration)> = tricklers
        .into_iter()
        .map(|h| {
            let (got, closed) = h.join().unwrap();
            let closed = closed.expect("the proxy never closed a trickling client");
            (got, closed)
        })
        .collect();
    outcomes.sort_by_key(|(g, _)| g.len());
    for (got, closed) in &outcomes {
        assert!(
            *closed >= Duration::from_millis(5500) && *closed < Duration::from_secs(12),
            "closed after {closed:?}"
        );
        assert!(
            got.is_empty() || got.as_slice() == rj,
            "answered {got:02x?}"
        );
    }
    let rejected = outcomes.iter().filter(|(g, _)| g.as_slice() == rj).count();
    assert_eq!(rejected, 2, "{outcomes:?}");

    let m = http_get(p.metrics, "/metrics", None);
    assert_eq!(
        metric(
            &m,
            "dicomtap_connections_shed_total{reason=\"associate_rq_timeout\"}"
        ),
        5.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "dicomtap_connections_shed_total{reason=\"source_limit\"}"
        ),
        2.0,
        "{m}"
    );
    let (events, _, _) = stop(p);
    let closed: Vec<&Value> = events.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(closed.len(), 6, "five tricklers and storescu");
    assert_eq!(
        closed
            .iter()
            .filter(|e| e["how"] == "association request timeout")
            .count(),
        3
    );
    let _ = scp.stop("TERM", Duration::from_secs(5));
}

#[test]
fn silent_connections_from_one_source_leave_slots_for_others() {
    if !require(
        "silent_connections_from_one_source_leave_slots_for_others",
        &["storescp", "echoscu"],
    ) {
        return;
    }
    let tmp = temp_dir("hostile-silent");
    let dir = tmp.path();
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    let p = proxy_to(
        dir,
        "proxy",
        scp_port,
        "max_associations = 8\nassociate_rq_timeout = \"2s\"",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], p.ports[0]));
    // As many connections as there are slots, from one address, sending nothing.
    let silent: Vec<TcpStream> = (0..8).map(|_| connect_from([127, 0, 0, 3], addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let ok = echoscu(dir, p.ports[0], "ECHOSCU", "ANY-SCP");
    assert!(ok.status.success(), "echoscu: {}", ok.text());
    // The deadline closes them all: each read ends.
    let t0 = Instant::now();
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf);
        assert!(
            matches!(n, Ok(0)) || n.is_err(),
            "a silent client got {n:?}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    let m = http_get(p.metrics, "/metrics", None);
    assert_eq!(
        metric(
            &m,
            "dicomtap_connections_shed_total{reason=\"source_limit\"}"
        ),
        4.0,
        "{m}"
    );
    let _ = stop(p);
    let _ = scp.stop("TERM", Duration::from_secs(5));
}
