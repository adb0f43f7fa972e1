//! Hostile traffic against `dicomtap proxy` and `dicomtap analyze` (the built binary),
//! each attack reproduced on loopback, bounded in time and size:
//!
//! - clients trickling an A-ASSOCIATE-RQ a byte at a time, or sending nothing, from one
//!   source address: the per-source limit keeps slots for everyone else (a real storescu
//!   and echoscu get through while they hold on), the ARTIM deadline closes them;
//! - a flood of 12-byte P-DATA PDUs and an A-ASSOCIATE-RQ with 10,000 odd presentation
//!   contexts: the event log stays smaller than the traffic (repeated findings and small
//!   PDU lines counted in one `events_suppressed` line);
//! - an AE title made of terminal escape sequences, through a real association, and an
//!   error comment of them from a pynetdicom SCP: no command prints them raw;
//! - a P-DATA-TF of 100,000 tiny PDVs: its event-log and detail lines list 64;
//! - errors written to a closed standard error, oversized statements, report files that
//!   cannot be created (before the device is contacted);
//! - SIGTERM with an association held open: the proxy exits when `--drain` is over.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::peers::{echoscu, storescp, storescu_command};
use support::*;

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all local).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::from((from, 0)))?;
            sock.connect(to).await
        })
        .unwrap();
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// A minimal A-ASSOCIATE-RQ (PS3.8 9.3.2) with `items` as its variable part.
fn associate_rq(calling: &str, called: &str, items: &[u8]) -> Vec<u8> {
    let ae = |s: &str| {
        let mut a = [b' '; 16];
        a[..s.len()].copy_from_slice(s.as_bytes());
        a
    };
    let len = 68 + items.len();
    let mut pdu = vec![0x01, 0];
    pdu.extend_from_slice(&(len as u32).to_be_bytes());
    pdu.extend_from_slice(&[0, 1, 0, 0]);
    pdu.extend_from_slice(&ae(called));
    pdu.extend_from_slice(&ae(calling));
    pdu.extend_from_slice(&[0; 32]);
    pdu.extend_from_slice(items);
    pdu
}

/// What became of a client that trickled its A-ASSOCIATE-RQ one byte per `every`: the
/// bytes the proxy answered, and how long after connecting the proxy closed it (`None`
/// when it had not within `limit`).
fn trickle(mut s: TcpStream, every: Duration, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let rq = associate_rq("TRICKLE", "ANY-SCP", &[]);
    let t0 = Instant::now();
    let mut got = Vec::new();
    s.set_read_timeout(Some(every)).unwrap();
    for b in rq.iter().cycle() {
        if t0.elapsed() > limit {
            return (got, None);
        }
        // The proxy may already have closed: a failed write is an answer too.
        let wrote = s.write_all(&[*b]).is_ok();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => return (got, Some(t0.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if !wrote {
                    return (got, Some(t0.elapsed()));
                }
            }
            Err(_) => return (got, Some(t0.elapsed())),
        }
    }
    (got, None)
}

fn metric(m: &str, line: &str) -> f64 {
    m.lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Stops the proxy; its event log lines, and the capture files.
fn stop(mut p: Proxy) -> (Vec<Value>, u64, Vec<PathBuf>) {
    let status = p.proc.stop("TERM", Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "proxy exit {status:?}\n{}",
        p.proc.output()
    );
    let mut events = Vec::new();
    let mut bytes = 0;
    let mut captures = Vec::new();
    for e in std::fs::read_dir(&p.rec).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            bytes += text.len() as u64;
            for line in text.lines() {
                events.push(serde_json::from_str(line).unwrap());
            }
        } else if path
            .extension()
            .is_some_and(|x| x == "pcap" || x == "pcapng")
        {
            captures.push(path);
        }
    }
    (events, bytes, captures)
}

fn proxy_to(dir: &Path, name: &str, upstream: u16, limits: &str) -> Proxy {
    start_proxy(
        dir,
        name,
        &format!(
            "[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{upstream}\"\n\
             [limits]\n{limits}\n"
        ),
    )
}

#[test]
fn trickling_clients_neither_lock_out_storescu_nor_stay_forever() {
    if !require(
        "trickling_clients_neither_lock_out_storescu_nor_stay_forever",
        &["storescp", "storescu"],
    ) {
        return;
    }
    let Some((_, data)) = require_python("trickling_clients") else {
        return;
    };
    let tmp = temp_dir("hostile-trickle");
    let dir = tmp.path();
    // --fork: the admitted tricklers reach storescp too, which serves one association at
    // a time otherwise.
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &["--fork"]);
    // Five slots, so at most three for one source; the RQ must be whole 6 s after accept.
    let p = proxy_to(
        dir,
        "proxy",
        scp_port,
        "max_associations = 5\nassociate_rq_timeout = \"6s\"",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], p.ports[0]));

    // Five clients from 127.0.0.2 sending their A-ASSOCIATE-RQ a byte every 500 ms (it
    // would take 37 s): before, they held all five slots for as long as they liked.
    let tricklers: Vec<_> = (0..5)
        .map(|_| {
            let s = connect_from([127, 0, 0, 2], addr);
            std::thread::spawn(move || {
                trickle(s, Duration::from_millis(500), Duration::from_secs(20))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));

    // A real storescu from 127.0.0.1 gets a slot while they trickle.
    let file = data.test_files.join("CT_small.dcm");
    let t = Instant::now();
    let r = run(
        "storescu",
        storescu_command(&["-aec", "ANY-SCP"], p.ports[0], &[file]),
        dir,
        Duration::from_secs(60),
    );
    assert!(r.status.success(), "storescu: {}", r.text());
    // ... well before the deadline that would have freed the slots anyway.
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "storescu waited {:?}",
        t.elapsed()
    );

    // Three were admitted and closed at the deadline with nothing sent (PS3.8 AA-2);
    // two were over the per-source limit and got A-ASSOCIATE-RJ (transient, service
    // provider, local-limit-exceeded) once the deadline for their RQ was over.
    let rj = [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2];
    let mut outcomes: Vec<(Vec<u8>, Duration)> = tricklers
        .into_iter()
        .map(|h| {
            let (got, closed) = h.join().unwrap();
            let closed = closed.expect("the proxy never closed a trickling client");
            (got, closed)
        })
        .collect();
    outcomes.sort_by_key(|(g, _)| g.len());
    for (got, closed) in &outcomes {
        assert!(
            *closed >= Duration::from_millis(5500) && *closed < Duration::from_secs(12),
            "closed after {closed:?}"
        );
        assert!(
            got.is_empty() || got.as_slice() == rj,
            "answered {got:02x?}"
        );
    }
    let rejected = outcomes.iter().filter(|(g, _)| g.as_slice() == rj).count();
    assert_eq!(rejected, 2, "{outcomes:?}");

    let m = http_get(p.metrics, "/metrics", None);
    assert_eq!(
        metric(
            &m,
            "dicomtap_connections_shed_total{reason=\"associate_rq_timeout\"}"
        ),
        5.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "dicomtap_connections_shed_total{reason=\"source_limit\"}"
        ),
        2.0,
        "{m}"
    );
    let (events, _, _) = stop(p);
    let closed: Vec<&Value> = events.iter().filter(|e| e["event"] == "closed").collect();
    assert_eq!(closed.len(), 6, "five tricklers and storescu");
    assert_eq!(
        closed
            .iter()
            .filter(|e| e["how"] == "association request timeout")
            .count(),
        3
    );
    let _ = scp.stop("TERM", Duration::from_secs(5));
}

#[test]
fn silent_connections_from_one_source_leave_slots_for_others() {
    if !require(
        "silent_connections_from_one_source_leave_slots_for_others",
        &["storescp", "echoscu"],
    ) {
        return;
    }
    let tmp = temp_dir("hostile-silent");
    let dir = tmp.path();
    let (mut scp, scp_port) = storescp("storescp", &dir.join("in"), dir, &[]);
    let p = proxy_to(
        dir,
        "proxy",
        scp_port,
        "max_associations = 8\nassociate_rq_timeout = \"2s\"",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], p.ports[0]));
    // As many connections as there are slots, from one address, sending nothing.
    let silent: Vec<TcpStream> = (0..8).map(|_| connect_from([127, 0, 0, 3], addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let ok = echoscu(dir, p.ports[0], "ECHOSCU", "ANY-SCP");
    assert!(ok.status.success(), "echoscu: {}", ok.text());
    // The deadline closes them all: each read ends.
    let t0 = Instant::now();
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf);
        assert!(
            matches!(n, Ok(0)) || n.is_err(),
            "a silent client got {n:?}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    let m = http_get(p.metrics, "/metrics", None);
    assert_eq!(
        metric(
            &m,
            "dicomtap_connections_shed_total{reason=\"source_limit\"}"
        ),
        4.0,
        "{m}"
    );
    let _ = stop(p);
    let _ = scp.stop("TERM", Duration::from_secs(5));
}

/// A TCP peer that reads and discards whatever it gets, for `conns` connections.
fn sink_upstream(conns: usize) -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((mut s, _)) = l.accept() else { return };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = vec![0u8; 64 * 1024];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    (port, h)
}

#[test]
fn floods_of_tiny_pdus_and_odd_contexts_do_not_amplify_the_event_log() {
    let tmp = temp_dir("hostile-log");
    let dir = tmp.path();
    let (up, sink) = sink_upstream(2);
    let p = proxy_to(dir, "proxy", up, "max_associations = 4");
    let addr = SocketAddr::from(([127, 0, 0, 1], p.ports[0]));

    // 1. 2 MiB of 12-byte P-DATA-TF PDUs (one 2-byte PDV each), no association first.
    let pdu = [0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 3];
    let flood: Vec<u8> = pdu.iter().copied().cycle().take(12 * 174_762).collect();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&flood).unwrap();
    drop(s);

    // 2. An A-ASSOCIATE-RQ with 10,000 presentation contexts, each with an even id and
    // an abstract syntax that is not a UID, and no transfer syntax.
    let mut items = Vec::new();
    items.extend_from_slice(&[0x10, 0, 0, 21]);
    items.extend_from_slice(b"1.2.840.10008.3.1.1.1");
    for i in 0..10_000u32 {
        let sub = b"not-a-uid";
        let len = 4 + 4 + sub.len();
        items.extend_from_slice(&[0x20, 0]);
        items.extend_from_slice(&(len as u16).to_be_bytes());
        items.extend_from_slice(&[((i % 127) * 2) as u8, 0, 0, 0]);
        items.extend_from_slice(&[0x30, 0]);
        items.extend_from_slice(&(sub.len() as u16).to_be_bytes());
        items.extend_from_slice(sub);
    }
    let rq = associate_rq("FLOOD", "ANY-SCP", &items);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&rq).unwrap();
    drop(s);
    let traffic = (flood.len() + rq.len()) as u64;

    assert!(wait_until(Duration::from_secs(60), || {
        let m = http_get(p.metrics, "/metrics", None);
        // Both analyses ended (each observes its line count last).
        metric(&m, "dicomtap_event_log_lines_per_association_count") == 2.0
    }));
    let m = http_get(p.metrics, "/metrics", None);
    assert!(
        metric(
            &m,
            "dicomtap_event_log_suppressed_total{reason=\"small_p_data\"}"
        ) > 100_000.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "dicomtap_event_log_suppressed_total{reason=\"repeated_finding\"}"
        ) > 0.0,
        "{m}"
    );
    let (events, log_bytes, captures) = stop(p);
    let _ = sink.join();

    // Before: the flood alone made ~38 times its size in JSON lines, and the
    // A-ASSOCIATE-RQ's line listed its 10,000 contexts (three times the RQ's size).
    assert!(
        log_bytes * 20 < traffic,
        "{log_bytes} bytes of event log for {traffic} bytes of traffic"
    );
    let rq_line = events
        .iter()
        .find(|e| e["event"] == "associate_rq")
        .expect("the A-ASSOCIATE-RQ is logged");
    assert_eq!(rq_line["contexts"].as_array().map(Vec::len), Some(256));
    let mut by_assoc: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        by_assoc
            .entry(e["assoc"].as_u64().unwrap())
            .or_default()
            .push(e);
    }
    assert_eq!(by_assoc.len(), 2);
    for (id, evs) in &by_assoc {
        let mut per_code: BTreeMap<&str, usize> = BTreeMap::new();
        for e in evs.iter().filter(|e| e["event"] == "finding") {
            *per_code.entry(e["code"].as_str().unwrap()).or_default() += 1;
        }
        assert!(!per_code.is_empty(), "association {id} has no findings");
        assert!(per_code.values().all(|&n| n <= 10), "{id}: {per_code:?}");
        let small = evs
            .iter()
            .filter(|e| e["event"] == "p_data" && e["pdu_length"].as_u64() < Some(1018))
            .count();
        assert!(small <= 10, "{id}: {small} small p_data lines");
        // One summary, just before the one `closed`, with the counts held back.
        let kinds: Vec<&str> = evs.iter().filter_map(|e| e["event"].as_str()).collect();
        let at = kinds
            .iter()
            .position(|k| *k == "events_suppressed")
            .expect("summary");
        assert_eq!(
            kinds.iter().filter(|k| **k == "events_suppressed").count(),
            1
        );
        assert_eq!(kinds.get(at + 1), Some(&"closed"), "{id}: {kinds:?}");
        let s = evs[at];
        let held: u64 = s["findings"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert!(held > 0, "{s}");
        if *id == by_assoc.keys().next().copied().unwrap() {
            let bytes: usize = evs.iter().map(|e| e.to_string().len()).sum();
            assert!(
                bytes < 64 * 1024,
                "{bytes} bytes logged for the P-DATA flood"
            );
            assert_eq!(s["small_p_data"], 174_762 - 10, "{s}");
            assert_eq!(s["small_p_data_bytes"], 12 * (174_762 - 10), "{s}");
        } else {
            assert_eq!(s["contexts_not_logged"], 10_000 - 256, "{s}");
        }
    }

    // `dicomtap analyze` of the recording: the same per-kind bound in its sessions and
    // in its detail view, each code's remainder counted.
    assert_eq!(captures.len(), 1, "{captures:?}");
    let cap = captures[0].to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_dicomtap");
    let out = run_ok(
        "analyze-json",
        command(bin, &["analyze", "--json", cap]),
        dir,
        Duration::from_secs(120),
    );
    let sessions: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "session")
        .map(|v| v["session"].clone())
        .collect();
    assert_eq!(sessions.len(), 2, "{}", out.stdout);
    assert!(
        out.stdout.len() < 128 * 1024,
        "{} bytes of sessions for {traffic} bytes of traffic",
        out.stdout.len()
    );
    for s in &sessions {
        let mut per_code: BTreeMap<&str, u64> = BTreeMap::new();
        for f in s["findings"].as_array().unwrap() {
            *per_code.entry(f["code"].as_str().unwrap()).or_default() += 1;
        }
        assert!(per_code.values().all(|&n| n <= 10), "{per_code:?}");
        let repeated = s["findings_repeated"].as_object().unwrap();
        assert!(!repeated.is_empty(), "{}", s["findings_repeated"]);
        for (code, r) in repeated {
            assert_eq!(per_code.get(code.as_str()), Some(&10), "{code}: {r}");
            assert!(r["count"].as_u64() > Some(0), "{code}: {r}");
        }
    }
    let rq = sessions
        .iter()
        .find(|s| s["contexts_dropped"].as_u64() > Some(0))
        .expect("the 10,000-context association");
    assert_eq!(rq["contexts"].as_array().map(Vec::len), Some(256));
    assert_eq!(rq["contexts_dropped"], 10_000 - 256);
    let id = rq["id"].to_string();
    let detail = run_ok(
        "analyze-detail",
        command(bin, &["analyze", "--detail", &id, cap]),
        dir,
        Duration::from_secs(120),
    );
    let lines = detail.stdout.lines().count();
    assert!(lines < 1000, "{lines} lines of detail");
    assert!(
        detail
            .stdout
            .contains("no answer seen to 10000 proposed ctx")
            && detail
                .stdout
                .contains("... and 9744 more contexts, not listed")
            && detail
                .stdout
                .contains("more error findings of code bad_context_id"),
        "{}",
        detail.stdout
    );
}

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
    if !require("drain_bound", &["storescp"]) {
        return;
    }
    let Some((py, _)) = require_python("drain_bound") else {
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

/// The exit status of `dicomtap ARGS` with its standard error a pipe nobody reads (closed
/// before the command writes to it); `None` when it had not ended within 60 s (then killed).
fn exit_with_closed_stderr(args: &[&str]) -> Option<i32> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dicomtap"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
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
    if !require(
        "no_command_prints_wire_escape_sequences_raw",
        &["storescp", "storescu", "echoscu"],
    ) {
        return;
    }
    let Some((py, data)) = require_python("no_command_prints_wire_escape_sequences_raw") else {
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

/// One P-DATA-TF PDU of 100,000 two-byte PDVs (600 kB): its event-log line listed every
/// PDV (5 MB), as did its line in `analyze --detail` (1.8 MB). Both list the first 64.
#[test]
fn a_pdu_of_many_tiny_pdvs_is_not_listed_pdv_by_pdv() {
    let tmp = temp_dir("hostile-pdvs");
    let dir = tmp.path();
    let (up, sink) = sink_upstream(1);
    let p = proxy_to(dir, "proxy", up, "max_associations = 4");
    let pdv = [0u8, 0, 0, 2, 1, 3];
    let body: Vec<u8> = pdv.iter().copied().cycle().take(6 * 100_000).collect();
    let mut pdu = vec![0x04, 0];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&body);
    let mut s = TcpStream::connect(("127.0.0.1", p.ports[0])).unwrap();
    s.write_all(&pdu).unwrap();
    drop(s);
    assert!(wait_until(Duration::from_secs(60), || {
        let m = http_get(p.metrics, "/metrics", None);
        metric(&m, "dicomtap_event_log_lines_per_association_count") == 1.0
    }));
    let (events, log_bytes, captures) = stop(p);
    let _ = sink.join();
    assert!(
        log_bytes * 20 < pdu.len() as u64,
        "{log_bytes} bytes of event log for a {} byte PDU",
        pdu.len()
    );
    let line = events
        .iter()
        .find(|e| e["event"] == "p_data")
        .expect("the PDU is logged");
    assert_eq!(line["pdvs"].as_array().map(Vec::len), Some(64), "{line}");
    let summary = events
        .iter()
        .find(|e| e["event"] == "events_suppressed")
        .expect("a summary");
    assert_eq!(summary["pdvs_not_logged"], 100_000 - 64, "{summary}");

    assert_eq!(captures.len(), 1, "{captures:?}");
    let out = run_ok(
        "analyze-detail",
        command(
            env!("CARGO_BIN_EXE_dicomtap"),
            &["analyze", "--detail", "1", captures[0].to_str().unwrap()],
        ),
        dir,
        Duration::from_secs(120),
    );
    let longest = out.stdout.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 8 * 1024, "a detail line of {longest} bytes");
    assert!(
        out.stdout.contains("... and 99936 more PDVs"),
        "{}",
        out.stdout
    );
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
