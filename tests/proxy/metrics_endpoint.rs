//! The `/metrics` endpoint as scrapers use it, with curl and promtool as the clients:
//! keep-alive, HEAD, gzip, the text format and OpenMetrics by `Accept`, the methods and
//! paths it refuses; over TLS (`--metrics-tls-*`, `[metrics_tls]`): curl over https,
//! plain HTTP and silent clients refused and counted, client certificates, the token,
//! certificate reload on SIGHUP, and a real Prometheus scraping it with the HTTPS example
//! of deploy/prometheus/. (Prometheus scrapes the plain endpoint in tests/fleet/.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::pki::Pki;
use support::{Proc, command, free_port, printed_addr, require, start_proxy, temp_dir, wait_until};

/// curl, silent but for errors, bounded to 10 s.
fn curl_output(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap()
}

fn curl(args: &[&str]) -> (String, String) {
    let out = curl_output(args);
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

/// `dicomtap proxy --metrics 127.0.0.1:0 ARGS` with `toml` as its file (one listener to a
/// free port is added): the process and its metrics port, read from the `https://`
/// start-up line.
fn start_https_proxy(dir: &Path, name: &str, toml: &str, args: &[&str]) -> (Proc, u16) {
    let cfg = dir.join(format!("{name}.toml"));
    let toml = format!(
        "{toml}\n[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{}\"\n",
        free_port()
    );
    std::fs::write(&cfg, toml).unwrap();
    let mut all = vec![
        "proxy",
        "--config",
        cfg.to_str().unwrap(),
        "--metrics",
        "127.0.0.1:0",
        "--drain",
        "1s",
    ];
    all.extend_from_slice(args);
    let mut proc = Proc::spawn(name, command(env!("CARGO_BIN_EXE_dicomtap"), &all), dir);
    let line = "dicomtap proxy: metrics on ";
    let up = wait_until(Duration::from_secs(20), || {
        proc.stdout().contains(&format!("{line}https://")) || proc.try_wait().is_some()
    });
    assert!(up && proc.try_wait().is_none(), "{}", proc.output());
    let port = proc
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(printed_addr)
        .map(|a| a.port())
        .expect("the metrics port");
    (proc, port)
}

/// The value of the sample `series` (name and labels, as exported) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn handshakes(text: &str, result: &str) -> f64 {
    let series = format!("dicomtap_tls_handshakes_total{{leg=\"metrics\",result=\"{result}\"}}");
    sample(text, &series).unwrap_or(0.0)
}

#[test]
fn https_scrapes_work_and_plain_or_silent_clients_are_refused_and_counted() {
    if !require("metrics over TLS", &["curl", "openssl"]) {
        return;
    }
    let dir = temp_dir("metrics-https");
    let dir = dir.path();
    let pki = Pki::new(dir);
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("leaf.key"),
        pki.path("ca.pem"),
    );
    // The flags, no table in the file.
    let (mut proxy, port) = start_https_proxy(
        dir,
        "proxy",
        "",
        &["--metrics-tls-cert", &cert, "--metrics-tls-key", &key],
    );
    // A client that connects and says nothing: the handshake's time runs out, the
    // endpoint goes on serving everyone else meanwhile.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let silent_since = Instant::now();

    let https = format!("https://127.0.0.1:{port}");
    let out = curl_output(&["-i", "--cacert", &ca, &format!("{https}/metrics")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("# TYPE dicomtap_analysis_dropped_bytes_total counter"));
    // By name too (the certificate is for localhost and 127.0.0.1).
    let (ok, _) = curl(&[
        "--cacert",
        &ca,
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}/healthz"),
    ]);
    assert_eq!(ok, "ok\n");
    // A certificate the client does not trust is refused by the client.
    let untrusted = curl_output(&[
        "--cacert",
        &pki.path("rogue-ca.pem"),
        &format!("{https}/metrics"),
    ]);
    assert!(!untrusted.status.success());

    // Plain HTTP to the TLS port gets no metrics.
    let plain = curl_output(&["-i", &format!("http://127.0.0.1:{port}/metrics")]);
    let plain_text = String::from_utf8_lossy(&plain.stdout);
    assert!(!plain.status.success(), "plain HTTP answered: {plain_text}");
    assert!(!plain_text.contains("dicomtap_"), "{plain_text}");

    let scrape = || curl(&["--cacert", &ca, &format!("{https}/metrics")]).0;
    let counted = wait_until(Duration::from_secs(5), || {
        handshakes(&scrape(), "not_tls") >= 1.0
    });
    let text = scrape();
    assert!(counted, "the plain request is not counted:\n{text}");
    assert!(handshakes(&text, "ok") >= 2.0, "{text}");

    // The silent client is closed when the handshake time (10 s) is over, not before.
    use std::io::Read;
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    let waited = silent_since.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the silent client got {read:?}"
    );
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "closed after {waited:?}"
    );
    let counted = wait_until(Duration::from_secs(5), || {
        handshakes(&scrape(), "timeout") >= 1.0
    });
    assert!(counted, "the silent client is not counted:\n{}", scrape());
    let log = proxy.output();
    assert!(log.contains("TLS handshake with 127.0.0.1:"), "{log}");
    assert_eq!(
        proxy
            .stop("TERM", Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn unusable_metrics_certificates_stop_the_start_naming_the_file() {
    if !require("metrics TLS errors", &["openssl"]) {
        return;
    }
    let dir = temp_dir("metrics-tls-errors");
    let dir = dir.path();
    let pki = Pki::new(dir);
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{}\"\n",
            free_port()
        ),
    )
    .unwrap();
    let missing = dir.join("no-such.key").to_string_lossy().into_owned();
    let start = |cert: &str, key: &str| {
        let out = support::dicomtap(&[
            "proxy",
            "--config",
            cfg.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
            "--metrics-tls-cert",
            cert,
            "--metrics-tls-key",
            key,
        ]);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start(&pki.path("server.pem"), &missing);
    assert!(err.contains(&missing), "{err}");
    // The key of another certificate (a CA's).
    let err = start(&pki.path("server.pem"), &pki.path("ca.key"));
    assert!(
        err.contains("server.pem") && err.contains("ca.key"),
        "{err}"
    );
    assert!(err.contains("[metrics_tls]"), "{err}");
    assert!(err.contains("does not belong to the certificate"), "{err}");
    assert!(!err.contains("KeyMismatch"), "debug output: {err}");
    // A key file where the certificate should be.
    let err = start(&pki.path("leaf.key"), &pki.path("leaf.key"));
    assert!(
        err.contains("leaf.key") && err.contains("CERTIFICATE"),
        "{err}"
    );
    // One without the other.
    let out = support::dicomtap(&[
        "proxy",
        "--config",
        cfg.to_str().unwrap(),
        "--metrics-tls-cert",
        &pki.path("server.pem"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--metrics-tls-key"));
}

#[test]
fn client_certificates_token_reload_and_a_real_prometheus() {
    if !require(
        "metrics over mutual TLS",
        &["curl", "openssl", "prometheus", "promtool"],
    ) {
        return;
    }
    let dir = temp_dir("metrics-mtls");
    let dir = dir.path();
    let pki = Pki::new(dir);
    let token = "scrape-s3cret";
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    // The server certificate in a file of its own, to be replaced for the reload.
    let served = dir.join("metrics.pem");
    std::fs::copy(pki.path("server.pem"), &served).unwrap();
    let toml = format!(
        "metrics_token_file = \"{}\"\n\n[metrics_tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        dir.join("token").display(),
        served.display(),
        pki.path("leaf.key"),
        pki.path("ca.pem"),
    );
    let (mut proxy, port) = start_https_proxy(dir, "proxy", &toml, &[]);
    let url = format!("https://127.0.0.1:{port}/metrics");
    let ca = pki.path("ca.pem");
    let key = pki.path("leaf.key");
    let auth = format!("Authorization: Bearer {token}");

    // No client certificate, or one of another CA: no HTTP at all.
    let none = curl_output(&["-i", "--cacert", &ca, "-H", &auth, &url]);
    assert!(
        !none.status.success(),
        "{}",
        String::from_utf8_lossy(&none.stdout)
    );
    let rogue = curl_output(&[
        "-i",
        "--cacert",
        &ca,
        "--cert",
        &pki.path("rogue.pem"),
        "--key",
        &key,
        "-H",
        &auth,
        &url,
    ]);
    assert!(
        !rogue.status.success(),
        "{}",
        String::from_utf8_lossy(&rogue.stdout)
    );
    // The right certificate but no token: 401; both: the metrics.
    let client = pki.path("client.pem");
    let with_cert = |extra: &[&str]| {
        let mut a = vec!["-i", "--cacert", &ca, "--cert", &client, "--key", &key];
        a.extend_from_slice(extra);
        a.push(&url);
        curl(&a).0
    };
    let unauth = with_cert(&[]);
    assert!(unauth.starts_with("HTTP/1.1 401"), "{unauth}");
    let text = with_cert(&["-H", &auth]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(handshakes(&text, "no_certificate") >= 1.0, "{text}");
    assert!(
        handshakes(&text, "unknown_ca") + handshakes(&text, "bad_certificate") >= 1.0,
        "{text}"
    );

    // SIGHUP: the new certificate is served to new connections.
    let subject = |p: u16| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{p} -CAfile {ca} -cert {} -key {key} </dev/null 2>/dev/null | openssl x509 -noout -subject",
                pki.path("client.pem")
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(subject(port).contains("O = dicomtap"), "{}", subject(port));
    pki.issue("renewed", "ca", "/O=dicomtap renewed/CN=localhost", "30");
    std::fs::copy(pki.path("renewed.pem"), &served).unwrap();
    proxy.signal("HUP");
    let reloaded = wait_until(Duration::from_secs(10), || {
        proxy.stdout().contains("and of the metrics endpoint")
    });
    assert!(reloaded, "{}", proxy.output());
    assert!(
        subject(port).contains("dicomtap renewed"),
        "{}",
        subject(port)
    );

    // A real Prometheus with the HTTPS example of deploy/prometheus/: its files beside the
    // configuration, the target pointed at this proxy.
    let prom_dir = dir.join("prometheus");
    let files = prom_dir.join("dicomtap-tls");
    std::fs::create_dir_all(&files).unwrap();
    for (from, to) in [
        (pki.path("ca.pem"), "ca.pem"),
        (pki.path("client.pem"), "scraper.pem"),
        (key.clone(), "scraper.key"),
        (
            dir.join("token").to_string_lossy().into_owned(),
            "metrics-token",
        ),
    ] {
        std::fs::copy(&from, files.join(to)).unwrap();
    }
    let example = std::fs::read_to_string(
        support::workspace_dir().join("deploy/prometheus/prometheus-https.yml"),
    )
    .unwrap();
    assert!(example.contains("dicomtap.example:9464"));
    let config = example
        .replace("dicomtap.example:9464", &format!("127.0.0.1:{port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 5s", "scrape_timeout: 1s");
    let prom_cfg = prom_dir.join("prometheus.yml");
    std::fs::write(&prom_cfg, config).unwrap();
    let check = Command::new("promtool")
        .args(["check", "config", prom_cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let web = free_port();
    let mut prom = Proc::spawn(
        "prometheus",
        command(
            "prometheus",
            &[
                format!("--config.file={}", prom_cfg.display()),
                format!("--storage.tsdb.path={}", prom_dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{web}"),
            ],
        ),
        dir,
    );
    let targets = format!("http://127.0.0.1:{web}/api/v1/targets");
    let mut last = String::new();
    let up = wait_until(Duration::from_secs(60), || {
        last = curl(&[&targets]).0;
        serde_json::from_str::<serde_json::Value>(&last)
            .ok()
            .and_then(|v| {
                v["data"]["activeTargets"].as_array().map(|ts| {
                    ts.iter()
                        .any(|t| t["labels"]["job"] == "dicomtap" && t["health"] == "up")
                })
            })
            .unwrap_or(false)
    });
    assert!(up, "the target is not up: {last}\n{}", prom.output());
    // Its scrapes arrived as the endpoint counts them: over TLS, with the certificate.
    let (query, _) = curl(&[&format!(
        "http://127.0.0.1:{web}/api/v1/query?query=up%7Bjob%3D%22dicomtap%22%7D"
    )]);
    assert!(query.contains("\"1\"]"), "{query}");
    prom.stop("TERM", Duration::from_secs(10));
    assert_eq!(
        proxy
            .stop("TERM", Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );
}
