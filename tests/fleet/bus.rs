use super::*;

/// Two sites: the modality stores and asks for commitment through site north's proxy; the
/// archive reports the instance failed on a new association through site south's proxy.
/// NATS is killed in the middle of traffic and started again, the central consumer is
/// killed and started again: every event arrives exactly once, nothing is missing, and the
/// silent Success is found across the two sites.
#[test]
fn events_across_sites_exactly_once_through_bus_and_consumer_restarts() {
    let Some((scene, py, data)) = fleet_scene("fleet-bus") else {
        return;
    };
    let dir = scene.path();
    scene.statement("archive.toml", ARCHIVE_STATEMENT);
    let statements = dir.join("statements");
    let out = dir.join("central");
    let nats_port = free_port();
    let mut bus = nats(dir, "nats", nats_port);
    let (mut central, _) = consumer(dir, "fleet1", nats_port, &out, &statements);

    let (archive_port, modality_port) = (free_port(), free_port());
    // South forwards to the modality's report listener; its port is the archive's report
    // destination.
    let south = start_proxy(
        dir,
        "south",
        &proxy_toml(
            "south",
            "gw1",
            modality_port,
            nats_port,
            &dir.join("spool-south"),
            "",
        ),
    );
    let north = start_proxy(
        dir,
        "north",
        &proxy_toml(
            "north",
            "gw1",
            archive_port,
            nats_port,
            &dir.join("spool-north"),
            "",
        ),
    );
    let mut archive = Proc::spawn(
        "archive",
        scene.python(
            &py,
            &[
                "archive".into(),
                archive_port.to_string(),
                "0000".into(),
                south.ports[0].to_string(),
            ],
        ),
        dir,
    );
    assert!(
        wait_for_port(archive_port, Duration::from_secs(20), Some(&mut archive)),
        "{}",
        archive.output()
    );
    let ct = data.test_files.join("CT_small.dcm");
    let m = run(
        "modality",
        scene.python(
            &py,
            &[
                "modality".into(),
                north.ports[0].to_string(),
                modality_port.to_string(),
                ct.display().to_string(),
            ],
        ),
        dir,
        Duration::from_secs(40),
    );
    assert!(
        m.status.success() && m.stdout.contains("report received"),
        "{}\n{}",
        m.text(),
        archive.output()
    );
    let files: Vec<PathBuf> = ["MR_small.dcm", "rtplan.dcm", "rtstruct.dcm"]
        .iter()
        .map(|f| data.test_files.join(f))
        .collect();
    let p = north.ports[0];
    storescu(dir, p, "CT_SCANNER", "ARCHIVE", &files);
    assert!(
        wait_until(Duration::from_secs(20), || count(
            &events(&out),
            "north",
            "store"
        ) >= 4),
        "{}",
        central.output()
    );
    // The consumer dies mid-stream; traffic goes on.
    central.stop("KILL", Duration::from_secs(5));
    storescu(dir, p, "CT_SCANNER", "ARCHIVE", &files[..2]);
    // The bus dies in the middle of an association; traffic goes on, into the spool.
    let twice: Vec<PathBuf> = files.iter().cycle().take(24).cloned().collect();
    let mut sending = Proc::spawn(
        "storescu-during-kill",
        peers::storescu_command(&["-aet", "CT_SCANNER", "-aec", "ARCHIVE"], p, &twice),
        dir,
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        sending.try_wait().is_none(),
        "storescu still sending when the bus dies"
    );
    bus.stop("KILL", Duration::from_secs(5));
    let status = sending.wait_timeout(Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "{}", sending.output());
    assert!(
        wait_until(Duration::from_secs(20), || {
            metric(
                north.metrics,
                "dicomtap_fleet_spool_events",
                &[("site", "north")],
            ) > 0.0
        }),
        "events spooled while the bus is down"
    );
    // The publisher notices at its next publish attempt (at most the acknowledgement
    // timeout, 5 s, after the bus went).
    assert!(
        wait_until(Duration::from_secs(15), || {
            metric(
                north.metrics,
                "dicomtap_fleet_bus_connected",
                &[("site", "north")],
            ) == 0.0
        }),
        "the publisher never noticed the bus had gone"
    );
    assert!(metric(north.metrics, "dicomtap_fleet_lag_seconds", &[]) >= 0.0);
    // Both come back (the bus with its store); more traffic.
    let _bus = nats(dir, "nats2", nats_port);
    let (central, cport) = consumer(dir, "fleet2", nats_port, &out, &statements);
    storescu(dir, p, "CT_SCANNER", "ARCHIVE", &files[..1]);
    let stores = 1 + 3 + 2 + 24 + 1;
    let done = wait_until(Duration::from_secs(60), || {
        count(&events(&out), "north", "store") >= stores
            && metric(north.metrics, "dicomtap_fleet_spool_events", &[]) == 0.0
    });
    assert!(done, "{}\n{}", central.output(), north.proc.output());
    std::thread::sleep(Duration::from_millis(1500));

    let evs = events(&out);
    let runs = assert_exactly_once(&evs, true);
    assert_eq!(runs.len(), 2, "one run per proxy: {runs:?}");
    // What was sent, kind by kind.
    assert_eq!(count(&evs, "north", "store"), stores);
    assert!(
        evs.iter()
            .filter(|e| e["kind"] == "store")
            .all(|e| e["status"] == "0000" && e["called_ae"] == "ARCHIVE")
    );
    assert_eq!(count(&evs, "north", "association"), 5);
    assert_eq!(count(&evs, "south", "association"), 1);
    assert_eq!(count(&evs, "south", "store"), 0);
    let commits: Vec<&Value> = evs.iter().filter(|e| e["kind"] == "commitment").collect();
    assert_eq!(commits.len(), 2, "{commits:?}");
    let result = commits.iter().find(|e| e["phase"] == "result").unwrap();
    assert_eq!(result["site"], "south");
    assert_eq!(result["failed"][0]["failure_reason"], 0x0110);
    let request = commits.iter().find(|e| e["phase"] == "request").unwrap();
    assert_eq!(request["site"], "north");
    assert_eq!(request["transaction_uid"], result["transaction_uid"]);
    // No patient data on the bus: names from the files never appear.
    let log = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    assert!(
        !log.contains("CompressedSamples"),
        "patient data on the bus"
    );
    // The silent Success, found across sites.
    let findings: Vec<Value> = std::fs::read_to_string(out.join("findings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let silent: Vec<&Value> = findings
        .iter()
        .filter(|f| f["rule"] == "silent-success")
        .collect();
    assert_eq!(silent.len(), 1, "{findings:?}");
    let f = silent[0];
    assert_eq!(f["device"], "PY_ARCHIVE");
    assert_eq!(f["site"], "north");
    assert_eq!(f["by"], "fleet");
    let observed = f["observed"].as_str().unwrap();
    assert!(
        observed.contains("at north/gw1") && observed.contains("at south/gw1"),
        "{observed}"
    );
    assert_eq!(
        metric(
            cport,
            "dicomtap_fleet_findings_total",
            &[
                ("site", "north"),
                ("device", "PY_ARCHIVE"),
                ("rule", "silent-success")
            ]
        ),
        1.0
    );
    assert_eq!(
        metric(
            cport,
            "dicomtap_fleet_events_total",
            &[("site", "north"), ("kind", "store")]
        ),
        stores as f64
    );
    // Identity labels on the instance's own metrics.
    assert!(
        metric(
            north.metrics,
            "dicomtap_associations_total",
            &[
                ("site", "north"),
                ("instance_name", "gw1"),
                ("result", "accepted")
            ]
        ) >= 5.0
    );
    // Sizing figures for docs/fleet.md: bytes per event by kind.
    let mut sizes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let e = sizes
            .entry(v["kind"].as_str().unwrap().to_string())
            .or_default();
        e.0 += 1;
        e.1 += line.len() + 1;
    }
    eprintln!(
        "events (count, bytes) by kind: {sizes:?}; duplicates dropped by the consumer: {}",
        metric(cport, "dicomtap_fleet_duplicates_total", &[])
    );
    let html = std::fs::read_to_string(out.join("fleet.html")).unwrap();
    for needle in [
        "PY_ARCHIVE",
        "silent-success",
        "north",
        "south",
        "Worst offenders",
        "Trend",
    ] {
        assert!(html.contains(needle), "{needle} missing from the report");
    }
    drop(archive);
    // A passive monitor at a third site reads north's recording: the same stores and the
    // commitment request arrive under its own identity.
    let mut north = north;
    north.proc.stop("TERM", Duration::from_secs(15));
    let pcap = std::fs::read_dir(&north.rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .unwrap();
    let args = [
        "monitor".to_string(),
        pcap.display().to_string(),
        "--no-follow".into(),
        "--exit-when-done".into(),
        "--metrics".into(),
        "127.0.0.1:0".into(),
        "--port".into(),
        archive_port.to_string(),
        "--site".into(),
        "west".into(),
        "--instance".into(),
        "span1".into(),
        "--fleet-nats".into(),
        format!("nats://127.0.0.1:{nats_port}"),
        "--fleet-spool".into(),
        dir.join("spool-west").display().to_string(),
    ];
    let mon = run(
        "monitor",
        command(env!("CARGO_BIN_EXE_dicomtap"), &args),
        dir,
        Duration::from_secs(60),
    );
    assert!(mon.status.success(), "{}", mon.text());
    assert!(
        wait_until(Duration::from_secs(20), || count(
            &events(&out),
            "west",
            "store"
        ) == stores),
        "{}\n{}",
        mon.text(),
        central.output()
    );
    let evs = events(&out);
    assert_eq!(count(&evs, "west", "association"), 5);
    assert!(
        evs.iter()
            .any(|e| e["site"] == "west" && e["kind"] == "commitment" && e["phase"] == "request"),
        "the monitor's commitment request"
    );
    assert_exactly_once(&evs, true);
}

/// The bus is away: the spool fills up to its bound and counts what it could not keep;
/// files are owner-only; the proxy restarts with the spool; when the bus comes, exactly
/// the spooled events arrive.
#[test]
fn full_spool_is_bounded_survives_a_restart_and_drains() {
    if !require("fleet", &["nats-server", "storescu", "storescp"]) {
        return;
    }
    let Some((_, data)) = support::require_python("fleet") else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let dir = support::temp_dir("fleet-spool");
    let dir = dir.path();
    let (_scp, scp_port) = peers::storescp("storescp", &dir.join("received"), dir, &[]);
    let nats_port = free_port();
    let spool = dir.join("spool");
    let toml = proxy_toml(
        "east",
        "gw7",
        scp_port,
        nats_port,
        &spool,
        "spool_max_bytes = 6000\n",
    );
    let mut east = start_proxy(dir, "east", &toml);
    let files: Vec<PathBuf> = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm"]
        .iter()
        .map(|f| data.test_files.join(f))
        .collect();
    for _ in 0..4 {
        storescu(dir, east.ports[0], "MOD_E", "STORESCP", &files);
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            metric(east.metrics, "dicomtap_fleet_spool_dropped_total", &[]) > 0.0
        }),
        "the spool never filled"
    );
    let bytes = metric(
        east.metrics,
        "dicomtap_fleet_spool_bytes",
        &[("site", "east")],
    );
    assert!(bytes > 0.0 && bytes <= 6000.0, "{bytes}");
    let kept = metric(east.metrics, "dicomtap_fleet_spool_events", &[]);
    assert!(kept > 0.0);
    let dropped = metric(east.metrics, "dicomtap_fleet_spool_dropped_total", &[]);
    east.proc.stop("TERM", Duration::from_secs(15));
    // What the spool holds, before the bus comes.
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let mut spooled = BTreeSet::new();
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                spooled.insert(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(
        spooled.len() as f64,
        kept,
        "spooled events on disk = the gauge"
    );
    // The bus and the consumer come; the proxy starts again on the same spool.
    let _bus = nats(dir, "nats", nats_port);
    let out = dir.join("central");
    std::fs::create_dir_all(dir.join("statements")).unwrap();
    let (central, cport) = consumer(dir, "fleet", nats_port, &out, &dir.join("statements"));
    // A copy of the spool as it is now: sent again below, as after an acknowledgement
    // that was lost.
    let copy = dir.join("spool-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let east2 = start_proxy(dir, "east2", &toml);
    let first_run = spooled
        .iter()
        .next()
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    let arrived = || {
        events(&out)
            .iter()
            .filter(|e| {
                e["id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{first_run}."))
            })
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(30), || arrived() == spooled.len()),
        "{} of {} spooled events arrived\n{}",
        arrived(),
        spooled.len(),
        central.output()
    );
    let evs = events(&out);
    let got: BTreeSet<String> = evs
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .filter(|id| id.starts_with(&format!("{first_run}.")))
        .collect();
    assert_eq!(got, spooled, "exactly the spooled events");
    // The dropped ones are the gap after the spool filled, counted, and told to the fleet
    // by the second run's health events.
    assert!(dropped > 0.0);
    let _ = cport;
    assert!(wait_until(Duration::from_secs(15), || {
        metric(east2.metrics, "dicomtap_fleet_spool_events", &[]) == 0.0
    }));
    // The same events sent again (same ids): the stream's duplicate window drops them.
    let toml3 = proxy_toml("east", "gw7", scp_port, nats_port, &copy, "");
    let east3 = start_proxy(dir, "east3", &toml3);
    assert!(
        wait_until(Duration::from_secs(30), || {
            metric(east3.metrics, "dicomtap_fleet_spool_events", &[]) == 0.0
                && metric(east3.metrics, "dicomtap_fleet_published_total", &[]) >= kept
        }),
        "{}",
        east3.proc.output()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(arrived(), spooled.len(), "sent twice, logged once");
    // A second consumer under a new durable name reads the whole stream from its start
    // into the same log: every event is a duplicate, recognised by its id.
    let logged = events(&out).len();
    drop(central);
    let (central2, cport2) = consumer_with(
        dir,
        "fleet-b",
        nats_port,
        &out,
        &dir.join("statements"),
        "replay",
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            metric(cport2, "dicomtap_fleet_duplicates_total", &[]) >= logged as f64
        }),
        "{}",
        central2.output()
    );
    assert_eq!(events(&out).len(), logged, "nothing logged twice");
    // (The first run's events past the full spool are missing, and counted.)
    assert_exactly_once(&events(&out), false);
}

/// Across sites the bus is reached over TLS, verified against the group's CA, with a
/// token read from a file: events flow; a proxy without the token, or a consumer that
/// does not trust the bus's certificate, gets nothing through and says why.
#[test]
fn bus_over_tls_with_a_token() {
    if !require("fleet", &["nats-server", "storescu", "storescp", "openssl"]) {
        return;
    }
    let Some((_, data)) = support::require_python("fleet") else {
        return;
    };
    let dir = support::temp_dir("fleet-tls");
    let dir = dir.path();
    let pki = support::pki::Pki::new(dir);
    let token = dir.join("bus.token");
    std::fs::write(&token, "s3cret-fleet-token\n").unwrap();
    let wrong = dir.join("wrong.token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let nats_port = free_port();
    let _bus = nats_with(
        dir,
        "nats",
        nats_port,
        &[
            "--tls".into(),
            "--tlscert".into(),
            pki.path("server.pem"),
            "--tlskey".into(),
            pki.path("leaf.key"),
            "--auth".into(),
            "s3cret-fleet-token".into(),
        ],
    );
    let (_scp, scp_port) = peers::storescp("storescp", &dir.join("received"), dir, &[]);
    let security = |token: &Path| {
        format!(
            "tls_ca = \"{}\"\ntoken_file = \"{}\"\n",
            pki.path("ca.pem"),
            token.display()
        )
    };
    let good = proxy_toml(
        "north",
        "gw1",
        scp_port,
        nats_port,
        &dir.join("spool-good"),
        &security(&token),
    );
    let bad = proxy_toml(
        "south",
        "gw2",
        scp_port,
        nats_port,
        &dir.join("spool-bad"),
        &security(&wrong),
    );
    let north = start_proxy(dir, "north", &good);
    let south = start_proxy(dir, "south", &bad);
    assert!(
        north.proc.stdout().contains("TLS (private CA), token"),
        "{}",
        north.proc.output()
    );
    let files = [data.test_files.join("CT_small.dcm")];
    storescu(dir, north.ports[0], "MOD_N", "STORESCP", &files);
    storescu(dir, south.ports[0], "MOD_S", "STORESCP", &files);
    let out = dir.join("central");
    std::fs::create_dir_all(dir.join("statements")).unwrap();
    let ca = pki.path("ca.pem");
    let (central, _) = consumer_with(
        dir,
        "fleet",
        nats_port,
        &out,
        &dir.join("statements"),
        "dicomtap-fleet",
        &[
            "--nats-ca".into(),
            ca.clone(),
            "--nats-token-file".into(),
            token.display().to_string(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            count(&events(&out), "north", "association") == 1
        }),
        "{}\n{}",
        central.output(),
        north.proc.output()
    );
    assert_eq!(
        metric(north.metrics, "dicomtap_fleet_bus_connected", &[]),
        1.0
    );
    // The proxy with the wrong token keeps its events in the spool.
    assert_eq!(
        metric(south.metrics, "dicomtap_fleet_bus_connected", &[]),
        0.0
    );
    assert!(metric(south.metrics, "dicomtap_fleet_spool_events", &[]) >= 1.0);
    assert_eq!(count(&events(&out), "south", "association"), 0);
    // A consumer that trusts another CA does not get through, and says why.
    let mut rogue = Proc::spawn(
        "fleet-rogue",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "fleet".to_string(),
                "--durable".into(),
                "rogue".into(),
                "--nats".into(),
                format!("nats://127.0.0.1:{nats_port}"),
                "--out".into(),
                dir.join("rogue-out").display().to_string(),
                "--metrics".into(),
                "off".into(),
                "--nats-ca".into(),
                pki.path("rogue-ca.pem"),
                "--nats-token-file".into(),
                token.display().to_string(),
            ],
        ),
        dir,
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            let o = rogue.output();
            o.contains("cannot reach") || rogue.try_wait().is_some()
        }),
        "{}",
        rogue.output()
    );
    let o = rogue.output();
    assert!(o.contains("cannot reach"), "{o}");
    assert!(!o.contains("Some("), "{o}");
    // A token file that does not exist is an error at start, naming it.
    let missing = proxy_toml(
        "west",
        "gw3",
        scp_port,
        nats_port,
        &dir.join("spool-missing"),
        &security(&dir.join("no-such.token")),
    );
    let cfg = dir.join("missing.toml");
    std::fs::write(&cfg, missing).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dicomtap"))
        .args(["proxy", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such.token"), "{err}");
}
