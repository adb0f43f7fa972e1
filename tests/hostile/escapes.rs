use super::*;

#[test]
fn escape_sequences_in_an_ae_title_are_printed_escaped() {
    if !require(
        "escape_sequences_in_an_ae_title_are_printed_escaped",
        &["storescp", "echoscu"],
    ) {
        return;
    }
    let tmp = temp_dir("hostile-ae");
    let dir = tmp.path();
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    let p = proxy_to(dir, "proxy", scp_port, "max_associations = 4");
    let ae = "\x1b[31mRED\x1b]0;T\x07";
    let r = echoscu(dir, p.ports[0], ae, "ANY-SCP");
    assert!(r.status.success(), "echoscu: {}", r.text());
    let (_, _, captures) = stop(p);
    let _ = scp.stop("TERM", Duration::from_secs(5));
    assert_eq!(captures.len(), 1, "{captures:?}");
    let cap = captures[0].to_str().unwrap();
    for args in [vec!["analyze", cap], vec!["analyze", "--detail", "1", cap]] {
        let out = run_ok(
            "analyze",
            command(env!("CARGO_BIN_EXE_dicomtap"), &args),
            dir,
            Duration::from_secs(60),
        );
        let text = out.stdout.clone();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: raw control characters in {text:?}"
        );
        assert!(
            text.contains("\\x1b[31mRED\\x1b]0;T\\x07"),
            "{args:?}: {text}"
        );
    }
}

/// Terminal control bytes: what a terminal acts on (ESC starts a sequence, BEL ends an
/// OSC title; C1 controls in UTF-8 do as ESC does on some terminals).
fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        .collect()
}

/// The AE title and a peer's error comment of escape sequences, through real
/// peers and the proxy's recording: no command prints them raw, on standard output or
/// standard error (reports, export lines, replay differences, inferred statements, diff,
/// check, probe, monitor, error messages).
#[test]
fn no_command_prints_wire_escape_sequences_raw() {
    let Some((py, data)) = require_peers(
        "no_command_prints_wire_escape_sequences_raw",
        &["storescp", "storescu", "echoscu"],
    ) else {
        return;
    };
    let tmp = temp_dir("hostile-escapes");
    let dir = tmp.path();
    let bin = env!("CARGO_BIN_EXE_dicomtap");
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    let evil_port = free_port();
    let mut evil = Proc::spawn(
        "hostile-scp",
        command(
            py.to_str().unwrap(),
            &[
                workspace_dir()
                    .join("tests/peers_py/hostile_scp.py")
                    .to_str()
                    .unwrap(),
                &evil_port.to_string(),
                "120",
            ],
        ),
        dir,
    );
    assert!(
        wait_for_port(evil_port, Duration::from_secs(20), Some(&mut evil)),
        "{}",
        evil.output()
    );
    let p = start_proxy(
        dir,
        "proxy",
        &format!(
            "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{evil_port}\"\n"
        ),
    );
    let ae = "\x1b[31mRED\x1b]0;T\x07";
    let ct = data.test_files.join("CT_small.dcm");
    // 1, 2: the AE title, to DCMTK's storescp; 3, 4: the comments, from the hostile SCP.
    let r = echoscu(dir, p.ports[0], ae, "STORESCP");
    assert!(r.status.success(), "echoscu: {}", r.text());
    run_ok(
        "storescu",
        storescu_command(
            &["-aet", ae, "-aec", "STORESCP"],
            p.ports[0],
            std::slice::from_ref(&ct),
        ),
        dir,
        Duration::from_secs(60),
    );
    let _ = echoscu(dir, p.ports[1], "PLAIN", "STORESCP");
    let _ = run(
        "storescu-evil",
        storescu_command(&["-aec", "STORESCP"], p.ports[1], &[ct]),
        dir,
        Duration::from_secs(60),
    );
    let (_, _, captures) = stop(p);
    assert_eq!(captures.len(), 1, "{captures:?}");
    let cap = captures[0].to_str().unwrap().to_string();
    let inferred = dir.join("inferred.toml");
    let bundled = workspace_dir().join("statements/dcmtk-storescp.toml");
    let out_dir = dir.join("export");
    let (to_scp, to_evil) = (
        format!("127.0.0.1:{scp_port}"),
        format!("127.0.0.1:{evil_port}"),
    );
    let runs: Vec<Vec<String>> = [
        vec!["analyze", &cap],
        vec!["analyze", "--detail", "2", &cap],
        vec!["analyze", "--detail", "4", &cap],
        vec!["analyze", "--ae", ae, &cap],
        vec!["export", "--out", out_dir.to_str().unwrap(), &cap],
        vec!["replay", "--dry-run", "--to", &to_scp, &cap],
        vec![
            "replay",
            "--to",
            &to_scp,
            "--allow-original-destination",
            "--timeout",
            "10",
            &cap,
        ],
        vec![
            "statement",
            "infer",
            "--ae",
            "STORESCP",
            "-o",
            inferred.to_str().unwrap(),
            &cap,
        ],
        vec!["statement", "infer", "--ae", "STORESCP", &cap],
        vec!["statement", "infer", "--ae", ae, &cap],
        vec!["statement", "check", inferred.to_str().unwrap()],
        vec![
            "statement",
            "diff",
            inferred.to_str().unwrap(),
            bundled.to_str().unwrap(),
        ],
        vec![
            "statement",
            "diff",
            "--detail",
            inferred.to_str().unwrap(),
            bundled.to_str().unwrap(),
        ],
        vec![
            "monitor",
            "--no-follow",
            "--exit-when-done",
            "--metrics",
            "127.0.0.1:0",
            &cap,
        ],
        vec![
            "probe",
            "--target",
            &to_evil,
            "--called-ae",
            "STORESCP",
            "echo",
        ],
    ]
    .iter()
    .map(|a| a.iter().map(|s| s.to_string()).collect())
    .collect();
    let mut shown = String::new();
    for (i, args) in runs.iter().enumerate() {
        let out = run(
            &format!("run{i}-{}", args[0]),
            command(bin, args),
            dir,
            Duration::from_secs(120),
        );
        for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                raw_controls(text).is_empty(),
                "dicomtap {}: raw control characters in {name}: {text:?}",
                args.join(" ")
            );
        }
        shown.push_str(&out.stdout);
        shown.push_str(&out.stderr);
    }
    // Errors written to a standard error nobody reads: exit 2, not a panic (101).
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    for args in [
        vec!["statement", "infer", "--ae", "NOBODY", &cap],
        vec!["statement", "infer", "--ae", ae, &cap],
        vec!["analyze", "no-such-capture.pcap"],
        vec!["statement", "check", empty.to_str().unwrap()],
    ] {
        assert_eq!(exit_with_closed_stderr(&args), Some(2), "{args:?}");
    }
    // The strings are there, escaped, not dropped.
    assert!(shown.contains("\\x1b[31mRED\\x1b]0;T\\x07"), "{shown}");
    assert!(shown.contains("\\x1b[31mBAD\\x1b]0;T\\x07"), "{shown}");
    let _ = evil.stop("TERM", Duration::from_secs(5));
    let _ = scp.stop("TERM", Duration::from_secs(5));
}
