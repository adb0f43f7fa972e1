use super::*;

// ---------------------------------------------------------------------------------------
// timeout-shorter-than-claimed, timeout-longer-than-claimed

/// pynetdicom waited longer than claimed (severity info), then aborted: it "gave up
/// (A-ABORT) after waiting" and then `what`.
fn assert_pynetdicom_gave_up(f: &Value, what: &str) {
    assert_eq!(f["severity"], "info");
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("gave up (A-ABORT) after waiting ") && observed.ends_with(what),
        "{observed}"
    );
}

/// An association with `acceptor` on `port`, idle (Verification, nothing sent) for at most
/// `hold` s, which the acceptor ends; captured.
fn idle_association(
    scene: &Scene,
    py: &Path,
    name: &str,
    port: u16,
    acceptor: &str,
    hold: &str,
) -> PathBuf {
    let mut out = String::new();
    let capture = scene.capture(name, &[port], || {
        out = data_run(
            scene,
            py,
            "idle",
            &["idle", &port.to_string(), acceptor, "IDLER", hold],
        );
    });
    assert!(out.contains("ended by the acceptor"), "{out}");
    capture
}

#[test]
fn storescp_ending_an_idle_association_before_its_claimed_timeout() {
    let Some((scene, py, _)) = conformance_scene("timeout-short", &["storescp", "dumpcap"]) else {
        return;
    };
    let port = free_port();
    // storescp's socket timeout ends an association idle for 2 s.
    let scp = scene.storescp(port, &["--socket-timeout", "2"]);
    let capture = idle_association(&scene, &py, "timeout-short", port, "STORESCP", "10");
    drop(scp);
    let storescp = TimeoutClaim {
        device: "DCMTK_STORESCP",
        title: "STORESCP",
        side: "acceptor",
        capability: ("Verification", "SCP", ALL_TS),
    };
    let f = storescp.finding(
        (&scene, &capture),
        "{ idle = 10 }",
        ("timeout-shorter-than-claimed", "timeouts_s.idle = 10"),
        1.5..4.0,
    );
    let observed = text(&f["observed"]);
    assert!(observed.starts_with("gave up ("), "{observed}");
    assert!(observed.ends_with(" on an idle association"), "{observed}");
    assert_evidence(&f, &capture, port, Some("acceptor"));

    // Claimed as it behaves: nothing.
    storescp.assert_silent((&scene, &capture), "{ idle = 2 }");
}

#[test]
fn pynetdicom_ending_an_idle_association_later_than_claimed() {
    let Some((scene, py, _)) = conformance_scene("timeout-long", &["dumpcap"]) else {
        return;
    };
    let port = free_port();
    // pynetdicom's network timeout aborts an association idle for 4 s.
    let scp = data_peer(
        &scene,
        &py,
        "idle-scp",
        port,
        &["idle-scp", &port.to_string(), "4"],
    );
    let capture = idle_association(&scene, &py, "timeout-long", port, "IDLESCP", "15");
    drop(scp);
    let idle_scp = TimeoutClaim {
        device: "PY_IDLESCP",
        title: "IDLESCP",
        side: "acceptor",
        capability: ("Verification", "SCP", PY_TS),
    };
    let f = idle_scp.finding(
        (&scene, &capture),
        "{ idle = 1.5 }",
        ("timeout-longer-than-claimed", "timeouts_s.idle = 1.5"),
        3.5..6.0,
    );
    assert_pynetdicom_gave_up(&f, " on an idle association");
    assert_evidence(&f, &capture, port, Some("acceptor"));

    idle_scp.assert_silent((&scene, &capture), "{ idle = 4 }");
}

#[test]
fn storescu_giving_up_on_a_slow_response_before_its_claimed_dimse_timeout() {
    let Some((scene, py, data)) = conformance_scene("timeout-dimse", &["storescu", "dumpcap"])
    else {
        return;
    };
    let port = free_port();
    // The SCP answers C-STORE after 5 s; storescu waits 2 s.
    let scp = data_peer(
        &scene,
        &py,
        "slow-scp",
        port,
        &["slow-scp", &port.to_string(), "5"],
    );
    let file = data.test_files.join("MR_small.dcm");
    let args = [
        "-R".to_string(),
        "--dimse-timeout".into(),
        "2".into(),
        "-aet".into(),
        "STORESCU".into(),
        "-aec".into(),
        "SLOWSCP".into(),
        "127.0.0.1".into(),
        port.to_string(),
        file.display().to_string(),
    ];
    let mut out = None;
    let capture = scene.capture("timeout-dimse", &[port], || {
        out = Some(run(
            "storescu",
            command("storescu", &args),
            scene.path(),
            Duration::from_secs(30),
        ));
    });
    drop(scp);
    let out = out.unwrap();
    assert!(
        !out.status.success(),
        "storescu did not time out:\n{}",
        out.text()
    );
    let storescu = TimeoutClaim {
        device: "DCMTK_STORESCU",
        title: "STORESCU",
        side: "initiator",
        capability: ("MRImageStorage", "SCU", ALL_TS),
    };
    let f = storescu.finding(
        (&scene, &capture),
        "{ dimse = 30 }",
        ("timeout-shorter-than-claimed", "timeouts_s.dimse = 30"),
        1.5..4.0,
    );
    let observed = text(&f["observed"]);
    assert!(
        observed.contains(" for a DIMSE response (its oldest unanswered request was sent "),
        "{observed}"
    );
    assert_evidence(&f, &capture, port, Some("requestor"));

    storescu.assert_silent((&scene, &capture), "{ dimse = 2 }");
}

/// A requestor that gets no answer to its A-ASSOCIATE-RQ: the mute acceptor reads it and
/// never answers, so what ends the association is the requestor's ARTIM (ACSE) timeout.
fn unanswered_association(
    scene: &Scene,
    py: &Path,
    name: &str,
    requestor: impl FnOnce(u16) -> std::process::Command,
) -> (PathBuf, String) {
    let port = free_port();
    let mute = data_peer(
        scene,
        py,
        "mute-scp",
        port,
        &["mute-scp", &port.to_string(), "30"],
    );
    let mut out = None;
    let capture = scene.capture(name, &[port], || {
        out = Some(run(
            name,
            requestor(port),
            scene.path(),
            Duration::from_secs(60),
        ));
    });
    drop(mute);
    (capture, out.unwrap().text())
}

#[test]
fn echoscu_giving_up_on_an_association_answer_before_its_claimed_artim() {
    let Some((scene, py, _)) = conformance_scene("timeout-artim-short", &["echoscu", "dumpcap"])
    else {
        return;
    };
    // echoscu waits 2 s for the A-ASSOCIATE-AC (-ta 2), then closes.
    let (capture, out) = unanswered_association(&scene, &py, "echoscu", |port| {
        command(
            "echoscu",
            &[
                "-ta",
                "2",
                "-aet",
                "ECHOSCU",
                "-aec",
                "MUTE",
                "127.0.0.1",
                &port.to_string(),
            ],
        )
    });
    assert!(out.contains("DUL network read timeout"), "{out}");
    let echoscu = TimeoutClaim {
        device: "DCMTK_ECHOSCU",
        title: "ECHOSCU",
        side: "initiator",
        capability: ("Verification", "SCU", ALL_TS),
    };
    let f = echoscu.finding(
        (&scene, &capture),
        "{ artim = 30 }",
        ("timeout-shorter-than-claimed", "timeouts_s.artim = 30"),
        1.5..4.0,
    );
    let observed = text(&f["observed"]);
    assert!(
        observed.starts_with("gave up (") && observed.ends_with(" for the A-ASSOCIATE answer"),
        "{observed}"
    );
    assert_eq!(text(&f["evidence"]["from"]), "requestor", "{f}");

    // Claimed as it behaves: nothing. (The idle and DIMSE claims do not apply while the
    // association is not established.)
    echoscu.assert_silent((&scene, &capture), "{ artim = 2, idle = 60, dimse = 60 }");
}

#[test]
fn pynetdicom_giving_up_on_an_association_answer_later_than_claimed() {
    let Some((scene, py, _)) = conformance_scene("timeout-artim-long", &["dumpcap"]) else {
        return;
    };
    // pynetdicom waits 4 s for the A-ASSOCIATE-AC (acse_timeout), then aborts.
    let (capture, out) = unanswered_association(&scene, &py, "artim-scu", |port| {
        scene.script(
            &py,
            "data.py",
            &["artim-scu", &port.to_string(), "MUTE", "PYSCU", "4"],
        )
    });
    assert!(out.contains("gave up after"), "{out}");
    let pyscu = TimeoutClaim {
        device: "PY_SCU",
        title: "PYSCU",
        side: "initiator",
        capability: ("Verification", "SCU", PY_TS),
    };
    let f = pyscu.finding(
        (&scene, &capture),
        "{ artim = 1.5 }",
        ("timeout-longer-than-claimed", "timeouts_s.artim = 1.5"),
        3.5..6.0,
    );
    assert_pynetdicom_gave_up(&f, " for the A-ASSOCIATE answer");
    assert_eq!(text(&f["evidence"]["from"]), "requestor", "{f}");

    pyscu.assert_silent((&scene, &capture), "{ artim = 4 }");
}
