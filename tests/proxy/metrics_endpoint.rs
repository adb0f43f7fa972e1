//! The `/metrics` endpoint as scrapers use it, with curl and promtool as the clients:
//! keep-alive, HEAD, gzip, the text format and OpenMetrics by `Accept`, the methods and
//! paths it refuses. (Prometheus itself scrapes it in tests/fleet/.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::Command;

use support::{free_port, require, start_proxy};

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scrapers_get_keep_alive_head_gzip_and_their_format() {
    if !require("metrics endpoint", &["curl", "promtool"]) {
        return;
    }
    let dir = support::temp_dir("metrics-http");
    let dir = dir.path();
    let toml = format!(
        "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{}\"\n",
        free_port()
    );
    let p = start_proxy(dir, "proxy", &toml);
    let base = format!("http://127.0.0.1:{}", p.metrics);
    let metrics = format!("{base}/metrics");

    // The text format by default; promtool reads it without a complaint.
    let (head_and_body, _) = curl(&["-i", &metrics]);
    let (head, body) = head_and_body.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    let complaints = String::from_utf8_lossy(&checked.stderr).into_owned()
        + &String::from_utf8_lossy(&checked.stdout);
    assert!(
        !complaints.contains("error while linting"),
        "promtool: {complaints}"
    );
    assert!(body.contains("# TYPE dicomtap_analysis_dropped_bytes_total counter"));

    // OpenMetrics when asked as Prometheus asks; the same samples, `# EOF` at the end.
    let (om, _) = curl(&[
        "-i",
        "-H",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        &metrics,
    ]);
    let (om_head, om_body) = om.split_once("\r\n\r\n").unwrap();
    assert!(
        om_head
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{om_head}"
    );
    assert!(om_body.ends_with("# EOF\n"), "{om_body}");
    assert!(
        om_body.contains("# TYPE dicomtap_analysis_dropped_bytes counter"),
        "{om_body}"
    );
    let samples = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("dicomtap_") && !l.contains("_seconds"))
            .filter_map(|l| l.rsplit_once(' ').map(|(n, _)| n.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        samples(body),
        samples(om_body),
        "the same series in both formats"
    );

    // gzip when accepted: curl --compressed asks and inflates; the raw bytes are gzip.
    let (z, _) = curl(&["-i", "-H", "Accept-Encoding: gzip", "-o", "-", &metrics]);
    assert!(
        z.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{}",
        &z[..z.len().min(400)]
    );
    let (inflated, _) = curl(&["--compressed", &metrics]);
    assert!(inflated.contains("# TYPE dicomtap_analysis_dropped_bytes_total counter"));

    // Two requests on one connection.
    let (_, verbose) = curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &metrics,
        &format!("{base}/healthz"),
    ]);
    assert!(
        verbose.contains("Re-using existing connection")
            || verbose.contains("Reusing existing connection"),
        "{verbose}"
    );

    // HEAD: the headers, no body; other methods and paths are refused in words.
    let (head_only, _) = curl(&["-I", &metrics]);
    assert!(head_only.starts_with("HTTP/1.1 200"), "{head_only}");
    assert!(!head_only.contains("# TYPE"), "{head_only}");
    let (post, _) = curl(&["-i", "-X", "POST", &metrics]);
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(
        post.to_ascii_lowercase().contains("allow: get, head"),
        "{post}"
    );
    let (missing, _) = curl(&["-i", &format!("{base}/nope")]);
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("try /metrics"), "{missing}");
    drop(p);
}
