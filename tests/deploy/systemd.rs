use super::*;

// ---------------------------------------------------------------------------------------
// systemd

fn unit_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('[')
        })
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    if !require(
        "systemd_unit_verifies_and_is_hardened",
        &["systemd-analyze"],
    ) {
        return;
    }
    let unit_path = deploy_dir().join("systemd/dicomtap.service");
    let text = read(&unit_path);
    let directives = unit_directives(&text);
    let get = |k: &str| -> Vec<&str> {
        directives
            .iter()
            .filter(|(d, _)| d == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for (key, want) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("ReadWritePaths", "/var/lib/dicomtap"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("SystemCallFilter", "@system-service"),
        ("User", "dicomtap"),
    ] {
        assert!(
            get(key).contains(&want),
            "{}: expected {key}={want}",
            unit_path.display()
        );
    }
    assert!(
        get("RestrictAddressFamilies")
            .first()
            .is_some_and(|v| v.contains("AF_INET") && v.contains("AF_INET6")),
        "RestrictAddressFamilies with AF_INET and AF_INET6"
    );
    let handles_hup = read(&workspace_dir().join("src/cmd/proxy.rs")).contains("hangup()");
    assert_eq!(
        !get("ExecReload").is_empty(),
        handles_hup,
        "ExecReload (SIGHUP) only when the proxy handles SIGHUP, which it {}",
        if handles_hup { "does" } else { "does not" }
    );
    let exec = get("ExecStart");
    let [exec] = exec.as_slice() else {
        panic!("one ExecStart");
    };
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/dicomtap");
    assert_eq!(argv[1], "proxy");

    // systemd-analyze verify needs the executable: a copy of the unit that runs the
    // freshly built binary, otherwise byte for byte the same.
    let tmp = temp_dir("deploy-systemd");
    let copy = tmp.path().join("dicomtap.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/dicomtap ", &format!("{DICOMTAP} ")),
    )
    .unwrap();
    let (ok, out) = run(
        "systemd-analyze-verify",
        cmd("systemd-analyze", &["verify", copy.to_str().unwrap()]),
        tmp.path(),
    );
    assert!(ok, "systemd-analyze verify failed:\n{out}");
    assert!(
        !out.contains("dicomtap.service:"),
        "systemd-analyze verify warns about the unit:\n{out}"
    );
    let (ok, out) = run(
        "systemd-analyze-security",
        cmd(
            "systemd-analyze",
            &[
                "security",
                "--offline=true",
                "--threshold=20",
                "--no-pager",
                copy.to_str().unwrap(),
            ],
        ),
        tmp.path(),
    );
    assert!(ok, "exposure above 2.0 (systemd-analyze security):\n{out}");

    // The ExecStart flags are the real ones: run them, with the example configuration
    // for /etc/dicomtap/dicomtap.toml, a temporary directory for /var/lib/dicomtap and
    // loopback ports.
    let rec = tmp.path().join("rec");
    let mut args: Vec<String> = argv[2..]
        .iter()
        .map(|a| match *a {
            "/etc/dicomtap/dicomtap.toml" => deploy_dir()
                .join("systemd/dicomtap.toml")
                .display()
                .to_string(),
            "/var/lib/dicomtap" => rec.display().to_string(),
            other => other.to_string(),
        })
        .collect();
    args.extend(loopback_overrides());
    let proxy = Proxy::start("proxy-systemd", &args, tmp.path());
    let recording = format!("recording to {}", rec.display());
    assert!(
        support::wait_until(Duration::from_secs(10), || proxy
            .proc
            .stdout()
            .contains(&recording)),
        "{}",
        proxy.proc.output()
    );
}
