//! `dicomtap monitor` serves its metrics over TLS with the proxy's flags
//! (`--metrics-tls-cert`, `--metrics-tls-key`, `--metrics-tls-client-ca`; docs/monitor.md,
//! docs/tls.md): curl with a client certificate gets them, without one it gets nothing.

use std::time::Duration;

use crate::support::{self, Proc, command, free_port, pki::Pki, require, temp_dir, wait_until};

#[test]
fn monitor_serves_https_with_client_certificates() {
    if !require("monitor metrics over TLS", &["curl", "openssl"]) {
        return;
    }
    let tmp = temp_dir("monitor-metrics-tls");
    let dir = tmp.path();
    let pki = Pki::new(dir);
    let capture = support::public_captures_dir().join("tapirx-dicom_arq_1_find_testclient.pcap");
    let port = free_port();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("leaf.key"),
        pki.path("ca.pem"),
    );
    let metrics = format!("127.0.0.1:{port}");
    let mut mon = Proc::spawn(
        "monitor",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &[
                "monitor",
                capture.to_str().unwrap(),
                "--no-follow",
                "--metrics",
                &metrics,
                "--metrics-tls-cert",
                &cert,
                "--metrics-tls-key",
                &key,
                "--metrics-tls-client-ca",
                &ca,
            ],
        ),
        dir,
    );
    let up = wait_until(Duration::from_secs(20), || {
        mon.stdout()
            .contains(&format!("metrics: https://{metrics}/metrics"))
            || mon.try_wait().is_some()
    });
    assert!(up && mon.try_wait().is_none(), "{}", mon.output());
    let url = format!("https://{metrics}/metrics");
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", &ca])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let client = pki.path("client.pem");
    let (ok, body) = curl(&["--cert", &client, "--key", &key]);
    assert!(ok, "{body}\n{}", mon.output());
    assert!(
        body.contains("# TYPE dicomtap_associations_total counter"),
        "{body}"
    );
    let (ok, body) = curl(&[]);
    assert!(
        !ok && !body.contains("dicomtap_"),
        "without a client certificate: {body}"
    );
    let plain = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://{metrics}/metrics"),
        ])
        .output()
        .unwrap();
    assert!(!plain.status.success());
    // The refusals are logged, and the monitor goes on serving.
    let logged = wait_until(Duration::from_secs(5), || {
        mon.stderr().contains("TLS handshake with 127.0.0.1:")
    });
    assert!(logged, "{}", mon.output());
    let (ok, _) = curl(&["--cert", &client, "--key", &key]);
    assert!(ok, "{}", mon.output());
    mon.stop("INT", Duration::from_secs(10));
}
