//! DICOM TLS through `dicomtap proxy` (the built binary) with real DCMTK peers and
//! certificates made here with `openssl`: plain to TLS, TLS to plain, TLS to TLS (files
//! arrive byte-identical), certificate reload on SIGHUP, and the refusals: no client
//! certificate, an untrusted one, plain DICOM on a TLS port, an expired upstream
//! certificate. The event log and the metrics are checked for the TLS facts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::pki::Pki;
use support::*;

const T: Duration = Duration::from_secs(60);
const PEERS: &[&str] = &["openssl", "storescp", "storescu", "echoscu"];

/// `dicomtap proxy --config FILE --record DIR --metrics 127.0.0.1:0`.
impl Proxy {
    /// Stops the proxy (SIGTERM) and returns the event log entries.
    fn stop(mut self) -> (Vec<Value>, String) {
        let status = self.proc.stop("TERM", Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "proxy exit {status:?}\n{}",
            self.proc.output()
        );
        let mut events = Vec::new();
        for e in std::fs::read_dir(&self.rec).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    events.push(serde_json::from_str(line).unwrap());
                }
            }
        }
        (events, self.proc.output())
    }

    fn metrics(&self) -> String {
        http_get(self.metrics, "/metrics", None)
    }
}

fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// storescp (every transfer syntax) with its TLS options, if any.
fn storescp(name: &str, dir: &Path, out: &Path, tls: Option<&[String]>) -> (Proc, u16) {
    let tls: Vec<&str> = tls.unwrap_or(&[]).iter().map(String::as_str).collect();
    peers::storescp(name, out, dir, &tls)
}

fn samples() -> Vec<PathBuf> {
    let data = pydicom_data().expect("pydicom sample data (scripts/install-test-peers.sh)");
    ["CT_small.dcm", "MR_small.dcm"]
        .iter()
        .map(|n| data.test_files.join(n))
        .filter(|p| p.exists())
        .collect()
}

fn storescu(dir: &Path, port: u16, tls: &[String], files: &[PathBuf]) -> RunOutput {
    let mut options: Vec<String> = tls.to_vec();
    options.extend(["-aet", "STORESCU", "-aec", "ANY-SCP", "-R"].map(String::from));
    let cmd = support::peers::storescu_command(&options, port, files);
    run("storescu", cmd, dir, T)
}

fn echoscu(dir: &Path, port: u16, tls: &[String]) -> RunOutput {
    let mut args: Vec<String> = tls.to_vec();
    args.extend(["127.0.0.1".into(), port.to_string()]);
    run("echoscu", command("echoscu", &args), dir, T)
}

fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// What storescp writes for `files` sent directly, without TLS or proxy.
fn reference(dir: &Path, files: &[PathBuf]) -> BTreeMap<String, Vec<u8>> {
    let out = dir.join("direct");
    let (_scp, port) = storescp("storescp-direct", dir, &out, None);
    let r = storescu(dir, port, &[], files);
    assert!(r.status.success(), "{}", r.text());
    dir_contents(&out)
}

/// A test's start: its directory, the PKI, the sample files and what storescp writes
/// for them directly.
fn setup(prefix: &str) -> (TempDir, Pki, Vec<PathBuf>, BTreeMap<String, Vec<u8>>) {
    let tmp = temp_dir(prefix);
    let pki = Pki::new(tmp.path());
    let files = samples();
    let direct = reference(tmp.path(), &files);
    (tmp, pki, files, direct)
}

fn tls_args(pki: &Pki, cert: &str) -> Vec<String> {
    vec![
        "+tls".into(),
        pki.path("leaf.key"),
        pki.path(cert),
        "+cf".into(),
        pki.path("ca.pem"),
    ]
}

#[test]
fn plain_client_to_tls_upstream() {
    if !require("plain_client_to_tls_upstream", PEERS) {
        return;
    }
    let (tmp, pki, files, direct) = setup("tls-up");
    let dir = tmp.path();

    // storescp requires a client certificate (DCMTK's default).
    let out = dir.join("received");
    let (_scp, scp_port) = storescp("storescp", dir, &out, Some(&tls_args(&pki, "server.pem")));
    let p = start_proxy(
        dir,
        "proxy",
        &format!(
            "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [listener.upstream_tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            pki.path("ca.pem"),
            pki.path("client.pem"),
            pki.path("leaf.key")
        ),
    );
    let r = storescu(dir, p.ports[0], &[], &files);
    assert!(r.status.success(), "{}", r.text());
    assert_eq!(dir_contents(&out), direct, "files differ through TLS");
    let m = p.metrics();
    assert!(
        m.contains("dicomtap_tls_handshakes_total{leg=\"upstream\",result=\"ok\"} 1"),
        "{m}"
    );
    let (events, log) = p.stop();
    let tls = events_named(&events, "tls_established");
    assert_eq!(tls.len(), 1, "{log}");
    let t = tls[0];
    assert_eq!(t["leg"], "upstream");
    assert!(
        t["version"] == "TLSv1.3" || t["version"] == "TLSv1.2",
        "{t}"
    );
    assert!(t["cipher_suite"].as_str().unwrap().contains("GCM"), "{t}");
    assert_eq!(t["peer_subject"], "O=dicomtap, CN=localhost");
    assert_eq!(t["peer_issuer"], "CN=dicomtap test CA");
    assert_eq!(t["peer_fingerprint_sha256"], pki.fingerprint("server.pem"));
    // The engine saw the decrypted DICOM.
    assert_eq!(events_named(&events, "associate_ac").len(), 1, "{log}");
    assert!(
        events_named(&events, "command")
            .iter()
            .any(|c| c.to_string().contains("C-STORE-RSP")),
        "{log}"
    );
}

#[test]
fn tls_client_to_plain_upstream_and_refusals() {
    if !require("tls_client_to_plain_upstream_and_refusals", PEERS) {
        return;
    }
    let (tmp, pki, files, direct) = setup("tls-down");
    let dir = tmp.path();

    let out = dir.join("received");
    let (_scp, scp_port) = storescp("storescp", dir, &out, None);
    let p = start_proxy(
        dir,
        "proxy",
        &format!(
            "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [listener.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            pki.path("server.pem"),
            pki.path("leaf.key"),
            pki.path("ca.pem")
        ),
    );
    let port = p.ports[0];
    let r = storescu(dir, port, &tls_args(&pki, "client.pem"), &files);
    assert!(r.status.success(), "{}", r.text());
    assert_eq!(dir_contents(&out), direct, "files differ through TLS");

    // No client certificate (anonymous TLS): refused.
    let r = echoscu(
        dir,
        port,
        &["+tla".into(), "+cf".into(), pki.path("ca.pem")],
    );
    assert!(!r.status.success(), "{}", r.text());
    // A certificate of a CA the proxy does not trust: refused.
    let r = echoscu(dir, port, &tls_args(&pki, "rogue.pem"));
    assert!(!r.status.success(), "{}", r.text());
    // Plain DICOM on the TLS port: refused.
    let r = echoscu(dir, port, &[]);
    assert!(!r.status.success(), "{}", r.text());

    let m = p.metrics();
    for want in [
        "dicomtap_tls_handshakes_total{leg=\"client\",result=\"ok\"} 1",
        "dicomtap_tls_handshakes_total{leg=\"client\",result=\"no_certificate\"} 1",
        "dicomtap_tls_handshakes_total{leg=\"client\",result=\"unknown_ca\"} 1",
        "dicomtap_tls_handshakes_total{leg=\"client\",result=\"not_tls\"} 1",
    ] {
        assert!(m.contains(want), "{want}\n{m}");
    }
    let (events, log) = p.stop();
    let ok = events_named(&events, "tls_established");
    assert_eq!(ok.len(), 1, "{log}");
    assert_eq!(ok[0]["leg"], "client");
    assert_eq!(ok[0]["peer_subject"], "O=dicomtap, CN=modality");
    assert_eq!(
        ok[0]["peer_fingerprint_sha256"],
        pki.fingerprint("client.pem")
    );
    let failed = events_named(&events, "tls_handshake_failed");
    let reasons: Vec<(&str, &str)> = failed
        .iter()
        .map(|f| (f["result"].as_str().unwrap(), f["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|(r, why)| *r == "no_certificate" && why.contains("presented no certificate")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(r, why)| *r == "unknown_ca" && why.contains("not signed by a trusted CA")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(r, why)| *r == "not_tls" && why.contains("did not speak TLS")),
        "{reasons:?}"
    );
}

#[test]
fn tls_to_tls_with_reload_and_expired_upstream() {
    if !require("tls_to_tls_with_reload_and_expired_upstream", PEERS) {
        return;
    }
    let (tmp, pki, files, direct) = setup("tls-both");
    let dir = tmp.path();

    let out = dir.join("received");
    let (_scp, scp_port) = storescp("storescp", dir, &out, Some(&tls_args(&pki, "server.pem")));
    let (_bad, bad_port) = storescp(
        "storescp-expired",
        dir,
        &dir.join("never"),
        Some(&tls_args(&pki, "expired.pem")),
    );
    // The proxy's own server certificate lives in a file the test replaces later.
    let proxy_cert = dir.join("proxy-cert.pem");
    std::fs::copy(pki.dir.join("server.pem"), &proxy_cert).unwrap();
    let upstream_tls = format!(
        "[listener.upstream_tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nserver_name = \"localhost\"\n",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("leaf.key")
    );
    let p = start_proxy(
        dir,
        "proxy",
        &format!(
            "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [listener.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nversions = [\"1.2\", \"1.3\"]\n\
             {upstream_tls}\n\
             [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{bad_port}\"\n{upstream_tls}",
            proxy_cert.display(),
            pki.path("leaf.key"),
            pki.path("ca.pem"),
        ),
    );
    let r = storescu(dir, p.ports[0], &tls_args(&pki, "client.pem"), &files);
    assert!(r.status.success(), "{}", r.text());
    assert_eq!(
        dir_contents(&out),
        direct,
        "files differ through TLS to TLS"
    );

    // An expired upstream certificate: the client gets A-ASSOCIATE-RJ (transient), as for
    // an unreachable upstream.
    let r = echoscu(dir, p.ports[1], &[]);
    assert!(!r.status.success(), "{}", r.text());
    assert!(r.text().contains("Rejected Transient"), "{}", r.text());

    // Reload: a broken file keeps the certificates in use...
    std::fs::write(&proxy_cert, "not a certificate\n").unwrap();
    let mut p = p;
    p.proc.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || p
            .proc
            .stdout()
            .contains("TLS reload failed")),
        "{}",
        p.proc.output()
    );
    let r = echoscu(dir, p.ports[0], &tls_args(&pki, "client.pem"));
    assert!(r.status.success(), "after a failed reload: {}", r.text());
    // ...a good one is served from then on.
    pki.issue("reloaded", "ca", "/O=dicomtap-reloaded/CN=localhost", "30");
    std::fs::copy(pki.dir.join("reloaded.pem"), &proxy_cert).unwrap();
    p.proc.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || p
            .proc
            .stdout()
            .contains("reloaded TLS of 2 listener(s)")),
        "{}",
        p.proc.output()
    );
    let s_client = run(
        "s_client",
        command(
            "openssl",
            &[
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", p.ports[0]),
                "-CAfile",
                &pki.path("ca.pem"),
                "-cert",
                &pki.path("client.pem"),
                "-key",
                &pki.path("leaf.key"),
            ],
        ),
        dir,
        T,
    );
    assert!(
        s_client.stdout.contains("dicomtap-reloaded"),
        "{}",
        s_client.text()
    );
    let r = echoscu(dir, p.ports[0], &tls_args(&pki, "client.pem"));
    assert!(r.status.success(), "after the reload: {}", r.text());

    let m = p.metrics();
    assert!(
        m.contains(
            "dicomtap_tls_handshakes_total{leg=\"upstream\",result=\"expired_certificate\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("dicomtap_upstream_errors_total{kind=\"tls\"} 1"),
        "{m}"
    );
    let (events, log) = p.stop();
    let failed = events_named(&events, "tls_handshake_failed");
    assert!(
        failed.iter().any(|f| f["leg"] == "upstream"
            && f["result"] == "expired_certificate"
            && f["reason"].as_str().unwrap().contains("expired")),
        "{log}\n{failed:?}"
    );
    let rejects = events_named(&events, "proxy_reject");
    assert!(
        rejects.iter().any(|r| r["result"] == 2 && r["source"] == 3),
        "{rejects:?}"
    );
    // Both legs of the first association are TLS, with SNI sent upstream.
    let legs: Vec<&str> = events_named(&events, "tls_established")
        .iter()
        .filter(|e| e["assoc"] == 1)
        .map(|e| e["leg"].as_str().unwrap())
        .collect();
    assert_eq!(legs, ["client", "upstream"], "{log}");
    assert!(
        events_named(&events, "tls_established")
            .iter()
            .any(|e| e["leg"] == "upstream" && e["server_name"] == "localhost"),
        "{log}"
    );
}
