use super::*;

#[test]
fn an_oversized_statement_is_refused_before_it_is_parsed() {
    let tmp = temp_dir("hostile-statement");
    let dir = tmp.path();
    // 4 MiB of one TOML array: parsing it whole took about 36 times its size in memory.
    let mut text = String::from("[device]\nname = \"BIG\"\n[x]\nv = [");
    while text.len() < 4 << 20 {
        text.push_str("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",");
    }
    text.push_str("]\n");
    let path = dir.join("big.toml");
    std::fs::write(&path, &text).unwrap();
    let out = run(
        "statement-check",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["statement", "check", path.to_str().unwrap()],
        ),
        dir,
        Duration::from_secs(60),
    );
    assert!(!out.status.success(), "{}", out.text());
    assert!(
        out.stderr.contains("big.toml") && out.stderr.contains("larger than 1 MiB"),
        "{}",
        out.text()
    );
}

/// `dicomtap proxy --drain DRAIN` in front of a real storescp, an association held open
/// by a pynetdicom requestor at SIGTERM: the proxy exits when the drain time is over, not
/// before and not seconds later, and the requestor learns that its association was cut.
#[test]
fn the_drain_time_bounds_the_exit_when_an_association_stays_open() {
    let Some((py, _)) = require_peers("drain_bound", &["storescp"]) else {
        return;
    };
    let tmp = temp_dir("hostile-drain");
    let dir = tmp.path();
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    for drain in [Duration::from_secs(3), Duration::from_millis(1500)] {
        let arg = format!("{}ms", drain.as_millis());
        let mut p = start_proxy_draining(
            dir,
            &format!("proxy-{arg}"),
            &format!(
                "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n"
            ),
            &arg,
        );
        let port = p.ports[0];
        let script = workspace_dir().join("tests/peers_py/hold_association.py");
        let mut holder = Proc::spawn(
            &format!("holder-{arg}"),
            command(
                py.to_str().unwrap(),
                &[
                    script.to_str().unwrap(),
                    &port.to_string(),
                    "STORESCP",
                    "60",
                ],
            ),
            dir,
        );
        assert!(
            wait_until(Duration::from_secs(20), || holder
                .stdout()
                .contains("established")
                || holder.try_wait().is_some()),
            "{}",
            holder.output()
        );
        assert!(holder.try_wait().is_none(), "{}", holder.output());
        let proxy = &mut p.proc;
        let t0 = Instant::now();
        proxy.signal("TERM");
        let status = proxy.wait_timeout(drain + Duration::from_secs(20));
        let took = t0.elapsed();
        assert!(status.is_some_and(|s| s.success()), "{}", proxy.output());
        assert!(
            took >= drain && took < drain + Duration::from_millis(1500),
            "--drain {arg}: exited {took:?} after SIGTERM\n{}",
            proxy.output()
        );
        assert!(
            proxy.stdout().contains("1 cut at drain"),
            "{}",
            proxy.output()
        );
        let ended = holder.wait_timeout(Duration::from_secs(20));
        assert!(ended.is_some(), "{}", holder.output());
        assert!(
            holder.stdout().contains("aborted"),
            "the requestor is told: {}",
            holder.output()
        );
    }
    let _ = scp.stop("TERM", Duration::from_secs(5));
}

/// `probe --html`/`--junit` to a path that cannot be written fail before the device is
/// contacted, not after the run (as `analyze` does for its output files).
#[test]
fn probe_report_files_are_created_before_the_device_is_probed() {
    let tmp = temp_dir("hostile-probe-out");
    let dir = tmp.path();
    let device = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    device.set_nonblocking(true).unwrap();
    let target = device.local_addr().unwrap().to_string();
    let missing = dir.join("no-such-dir/report");
    for flag in ["--html", "--junit"] {
        let out = run(
            "probe",
            command(
                env!("CARGO_BIN_EXE_dicomtap"),
                &[
                    "probe",
                    "--target",
                    &target,
                    "--called-ae",
                    "ANY-SCP",
                    flag,
                    missing.to_str().unwrap(),
                    "echo",
                ],
            ),
            dir,
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(2), "{}", out.text());
        assert!(out.stderr.contains("cannot create"), "{}", out.text());
        assert!(
            matches!(device.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{flag}: the device was contacted"
        );
    }
}

/// A proxy whose standard output was closed by its reader keeps serving, and stops
/// cleanly on SIGTERM (the start-up and shutdown lines are simply not seen).
#[test]
fn proxy_with_a_closed_stdout_keeps_serving() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = upstream.local_addr().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dicomtap"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "off",
            "--drain",
            "1s",
        ])
        .args(["--upstream", &up.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    std::thread::sleep(Duration::from_millis(1500));
    let early = child.try_wait().unwrap();
    if early.is_none() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let t0 = Instant::now();
    let mut status = early;
    while status.is_none() && t0.elapsed() < Duration::from_secs(20) {
        status = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(early.is_none(), "the proxy ended on its own: {early:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}
