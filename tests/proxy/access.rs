//! Access control through `dicomtap proxy` (the built binary) with real DCMTK peers:
//! allowed and denied calling AE titles, a denied called AE title, a source address not
//! allowed; the A-ASSOCIATE-RJ reasons as echoscu reports them, the event log and the
//! metrics; and the metrics endpoint's bearer token.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::peers::echoscu;
use support::*;

fn stop(mut p: Proxy) -> Vec<Value> {
    let status = p.proc.stop("TERM", Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "proxy exit {status:?}\n{}",
        p.proc.output()
    );
    let mut events = Vec::new();
    for e in std::fs::read_dir(&p.rec).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                events.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    events
}

#[test]
fn allow_and_deny_lists_with_standard_reject_reasons() {
    if !require(
        "allow_and_deny_lists_with_standard_reject_reasons",
        &["storescp", "echoscu"],
    ) {
        return;
    }
    let tmp = temp_dir("access");
    let dir = tmp.path();
    let scp_port = free_port();
    let mut scp = Proc::spawn(
        "storescp",
        command(
            "storescp",
            &["-od", dir.to_str().unwrap(), &scp_port.to_string()],
        ),
        dir,
    );
    assert!(wait_for_port(
        scp_port,
        Duration::from_secs(10),
        Some(&mut scp)
    ));
    let token_file = dir.join("metrics.token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let p = start_proxy(
        dir,
        "proxy",
        &format!(
            "metrics_token_file = \"{}\"\n\
             [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [listener.access]\nallow_calling_ae = [\"MODALITY\", \"BLOCKED\"]\n\
             deny_calling_ae = [\"BLOCKED\"]\ndeny_called_ae = [\"SECRET\"]\n\
             allow_source = [\"127.0.0.0/8\", \"::1\"]\n\
             [[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [listener.access]\nallow_source = [\"10.0.0.0/8\"]\n",
            token_file.display()
        ),
    );
    let (port, remote_only) = (p.ports[0], p.ports[1]);

    let ok = echoscu(dir, port, "MODALITY", "ANY-SCP");
    assert!(ok.status.success(), "{}", ok.text());

    let cases = [
        // (calling, called, port, expected reason text)
        (
            "BLOCKED",
            "ANY-SCP",
            port,
            "Calling AE Title Not Recognized",
        ),
        (
            "STRANGER",
            "ANY-SCP",
            port,
            "Calling AE Title Not Recognized",
        ),
        ("MODALITY", "SECRET", port, "Called AE Title Not Recognized"),
        ("MODALITY", "ANY-SCP", remote_only, "Reason: No Reason"),
    ];
    for (calling, called, port, reason) in cases {
        let r = echoscu(dir, port, calling, called);
        let text = r.text();
        assert!(!r.status.success(), "{calling}->{called}: {text}");
        assert!(
            text.contains("Rejected Permanent"),
            "{calling}->{called}: {text}"
        );
        assert!(text.contains("Service User"), "{calling}->{called}: {text}");
        assert!(text.contains(reason), "{calling}->{called}: {text}");
    }

    // The metrics endpoint wants the token.
    let anon = http_get(p.metrics, "/metrics", None);
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    assert!(!anon.contains("dicomtap_"), "{anon}");
    let wrong = http_get(p.metrics, "/healthz", Some("guess"));
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let m = http_get(p.metrics, "/metrics", Some("s3cret-token"));
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    for want in [
        "dicomtap_access_denied_total{reason=\"calling_ae\"} 2",
        "dicomtap_access_denied_total{reason=\"called_ae\"} 1",
        "dicomtap_access_denied_total{reason=\"source\"} 1",
        "result=\"proxy_rejected_access\"",
    ] {
        assert!(m.contains(want), "{want}\n{m}");
    }
    let health = http_get(p.metrics, "/healthz", Some("s3cret-token"));
    assert!(health.ends_with("ok\n"), "{health}");

    let events = stop(p);
    let denied: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "access_denied")
        .map(|e| (e["rule"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(denied.len(), 4, "{denied:?}");
    assert!(
        denied.contains(&("calling_ae", "calling AE title \"BLOCKED\" is denied")),
        "{denied:?}"
    );
    assert!(
        denied.contains(&("called_ae", "called AE title \"SECRET\" is denied")),
        "{denied:?}"
    );
    let rejects: Vec<(u64, u64, u64)> = events
        .iter()
        .filter(|e| e["event"] == "proxy_reject")
        .map(|e| {
            (
                e["result"].as_u64().unwrap(),
                e["source"].as_u64().unwrap(),
                e["reason"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = rejects.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [(1, 1, 1), (1, 1, 3), (1, 1, 3), (1, 1, 7)],
        "{rejects:?}"
    );
    // Refused associations never reached the upstream.
    let reached = events
        .iter()
        .filter(|e| e["event"] == "upstream_connected")
        .count();
    assert_eq!(reached, 1);
}
