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

#[path = "../support/mod.rs"]
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

mod bounds;
mod escapes;
mod floods;
mod slots;
