//! User-facing text never shows Rust debug output: every finding, diff line and error
//! message the commands produce on the project's captures, bundled statements and wrong
//! inputs is scanned for `Some(`, `None`, `Ok(`, `Err(` and struct syntax (`Name { field:`).
//!
//! The captures are the ones in the repository (`fuzz/seeds/capture/`, real traffic of
//! DCMTK and go-netdicom) plus, when the shared directory is beside the clone, the public
//! captures there; the bundled statements are diffed pairwise and checked against the
//! captures; then the commands are run on inputs that must fail.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{command, run, temp_dir};

const LIMIT: Duration = Duration::from_secs(120);

/// The debug-output shapes no user-facing text may contain, found in `text`.
fn debug_output(text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        let shapes = [
            line.contains("Some("),
            line.contains("Ok(") && !line.contains("\"Ok("),
            line.contains("Err("),
            words.contains(&"None"),
            struct_syntax(line),
        ];
        if shapes.iter().any(|&b| b) {
            bad.push(format!("line {}: {line}", n + 1));
        }
    }
    bad
}

/// `Name { field: ...`: a capitalised identifier, ` { `, then `ident:`.
fn struct_syntax(line: &str) -> bool {
    let b = line.as_bytes();
    let mut i = 0;
    while let Some(at) = line[i..].find(" { ") {
        let pos = i + at;
        let before = &line[..pos];
        let name = before
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        let after = &line[pos + 3..];
        let field: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with(|c: char| c.is_ascii_uppercase())
            && !field.is_empty()
            && after[field.len()..].starts_with(':')
        {
            return true;
        }
        i = pos + 1;
        if i >= b.len() {
            break;
        }
    }
    false
}

fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![support::workspace_dir().join("fuzz/seeds/capture")];
    let public = support::public_captures_dir();
    if public.is_dir() {
        dirs.push(public);
    }
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn statements() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(support::workspace_dir().join("statements"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn dicomtap(args: &[&str], dir: &Path) -> String {
    let out = run(
        "dicomtap",
        command(env!("CARGO_BIN_EXE_dicomtap"), args),
        dir,
        LIMIT,
    );
    format!("{}\n{}", out.stdout, out.stderr)
}

#[test]
fn the_debug_output_detector_finds_what_it_must() {
    assert!(!debug_output("data set of message Some(1) on context 3").is_empty());
    assert!(
        !debug_output("role selection Some(RoleSelection { scu: false, scp: true })").is_empty()
    );
    assert!(!debug_output("message None on context 1").is_empty());
    assert!(!debug_output("Other(OtherError(UnsupportedCertVersion)) Err(x)").is_empty());
    assert!(debug_output("role selection SCU role no, SCP role yes; none seen").is_empty());
    assert!(debug_output("max_associations = { acceptor = 4 }").is_empty());
}

#[test]
fn findings_diffs_and_errors_show_no_debug_output() {
    let tmp = temp_dir("user-text");
    let dir = tmp.path();
    let statements = statements();
    let stmt_dir = support::workspace_dir().join("statements");
    let stmt_dir = stmt_dir.to_str().unwrap();
    let mut problems = Vec::new();
    let mut check = |what: String, text: String| {
        let bad = debug_output(&text);
        if !bad.is_empty() {
            problems.push(format!("{what}:\n  {}", bad.join("\n  ")));
        }
    };

    let caps = captures();
    assert!(caps.len() >= 6, "{caps:?}");
    for cap in &caps {
        let c = cap.to_str().unwrap();
        check(format!("analyze {c}"), dicomtap(&["analyze", c], dir));
        check(
            format!("analyze --json --statements {c}"),
            dicomtap(&["analyze", "--json", "--statements", stmt_dir, c], dir),
        );
        check(
            format!("analyze --detail 1 {c}"),
            dicomtap(&["analyze", "--detail", "1", c], dir),
        );
        for ae in [
            "testclient",
            "testserver",
            "STORESCP",
            "ECHOSCU",
            "STORESCU",
        ] {
            check(
                format!("statement infer {ae} {c}"),
                dicomtap(&["statement", "infer", "--ae", ae, c], dir),
            );
        }
    }
    for (i, a) in statements.iter().enumerate() {
        for b in &statements[i + 1..] {
            let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
            check(
                format!("statement diff {a} {b}"),
                dicomtap(&["statement", "diff", a, b], dir),
            );
            check(
                format!("statement diff --json {a} {b}"),
                dicomtap(&["statement", "diff", "--json", a, b], dir),
            );
        }
    }

    // Wrong inputs: each error names the problem in words.
    let empty = dir.join("empty.hex");
    std::fs::write(&empty, "").unwrap();
    let log = dir.join("dicomtap-x.jsonl");
    std::fs::write(&log, "{\"assoc\":1,\"event\":\"opened\"}\n").unwrap();
    let bad_stmt = dir.join("bad.toml");
    std::fs::write(
        &bad_stmt,
        "[device]\nname = \"x\"\n[[ae]]\ntitle = 1\nroles = [\"SCX\"]\n",
    )
    .unwrap();
    let first = caps[0].to_str().unwrap();
    let wrong: Vec<Vec<&str>> = vec![
        vec!["analyze", "/nonexistent/capture.pcapng"],
        vec!["analyze", log.to_str().unwrap()],
        vec!["pdu", "--hex", empty.to_str().unwrap()],
        vec![
            "replay",
            first,
            "--to",
            "127.0.0.1:9",
            "--association",
            "999",
        ],
        vec!["statement", "check", bad_stmt.to_str().unwrap()],
        vec![
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "nohost",
            "--drain",
            "0s",
        ],
    ];
    for args in &wrong {
        check(format!("dicomtap {}", args.join(" ")), dicomtap(args, dir));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Wrong values are usage or input errors (exit 2) that name the value, not silent
/// successes.
#[test]
fn wrong_values_are_input_errors_naming_them() {
    let tmp = temp_dir("user-errors");
    let dir = tmp.path();
    let empty = dir.join("empty.hex");
    std::fs::write(&empty, "").unwrap();
    let first = captures()[0].clone();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["pdu", "--hex", empty.to_str().unwrap()], "no bytes"),
        (
            vec![
                "replay",
                first.to_str().unwrap(),
                "--to",
                "127.0.0.1:9",
                "--association",
                "999",
            ],
            "--association 999",
        ),
        (
            vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", "nohost"],
            "\"nohost\" is not host:port",
        ),
        (
            vec![
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:104",
                "--route",
                "PACS=pacs.example",
            ],
            "\"pacs.example\" is not host:port",
        ),
    ];
    for (args, says) in cases {
        let out = run(
            "dicomtap",
            command(env!("CARGO_BIN_EXE_dicomtap"), &args),
            dir,
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.text());
        assert!(out.stderr.contains(says), "{args:?}: {}", out.text());
    }
}

/// Logs written to a pipe carry no ANSI colour codes; every subcommand's `--help` shows
/// its full text (probe lists its checks), and `-h` the short one.
#[test]
fn logs_and_help_are_plain_and_complete() {
    let tmp = temp_dir("user-help");
    let dir = tmp.path();
    let mut proxy = support::Proc::spawn(
        "proxy-log",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "proxy",
                "--log",
                "debug",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
                "--metrics",
                "127.0.0.1:0",
                "--drain",
                "0s",
            ],
        ),
        dir,
    );
    let logged = support::wait_until(Duration::from_secs(20), || {
        proxy.stderr().contains("listening on")
    });
    proxy.stop("TERM", Duration::from_secs(10));
    let log = proxy.stderr();
    assert!(logged, "the proxy logs its start: {}", proxy.output());
    assert!(!log.contains('\u{1b}'), "{log}");
    let help = dicomtap(&["probe", "--help"], dir);
    for check in [
        "echo",
        "contexts",
        "store",
        "commitment",
        "find-move",
        "matching",
        "charset",
        "max-pdu",
        "load",
        "timeouts",
        "malformed",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(check)),
            "probe --help describes {check}:\n{help}"
        );
    }
    assert!(!help.contains("see above"), "{help}");
    let replay = dicomtap(&["replay", "--help"], dir);
    assert!(replay.contains("Exit codes"), "{replay}");
}
