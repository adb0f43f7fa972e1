//! The proxy's event tap into the publisher loses nothing, however fast the events come
//! and however small the queues: a burst far beyond every buffer, with the bus away, ends
//! whole in the spool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dicomtap_fleet::Identity;
use dicomtap_fleet::publisher::{self, Publisher, PublisherConfig};
use dicomtap_proxy::server::{Notice, ProxyEvent, ProxyEventKind, ProxyNotice};
use prometheus::Registry;

fn notice(association: u64, what: Notice) -> ProxyEvent {
    ProxyEvent {
        association,
        client: SocketAddr::from((Ipv4Addr::LOCALHOST, 40000 + (association % 20000) as u16)),
        upstream: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 11112))),
        kind: ProxyEventKind::Proxy(ProxyNotice {
            ts_us: 1_700_000_000_000_000 + association,
            what,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_every_queue_reaches_the_spool_whole() {
    const ASSOCIATIONS: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the bus stays away, everything must be spooled.
    let mut config = PublisherConfig::new("nats://127.0.0.1:1", dir.path().join("spool"));
    config.queue = 16;
    let registry = Registry::new();
    let publisher = Publisher::start(
        Identity::new("site-a", "proxy-1").unwrap(),
        config,
        &registry,
    )
    .unwrap();
    let (tap, rx) = tokio::sync::mpsc::channel(8);
    let task = publisher::spawn_proxy_tap(rx, publisher.sender());
    // The producer runs as fast as it can: one association is two events.
    for id in 1..=ASSOCIATIONS {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 11113));
        tap.send(notice(id, Notice::Accepted { listen }))
            .await
            .unwrap();
        tap.send(notice(
            id,
            Notice::Closed {
                bytes_from_requestor: 100,
                bytes_from_acceptor: 200,
                duration_us: 1_000,
                how: "released".into(),
            },
        ))
        .await
        .unwrap();
    }
    drop(tap);
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the tap task ends when the proxy's side closes")
        .unwrap();
    // The spool task appends in batches: wait (bounded) until all are on disk. Health
    // events (the bus is away) may be spooled beside them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while publisher.pending() < ASSOCIATIONS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(publisher.metrics().events_lost_total.get(), 0);
    assert_eq!(publisher.metrics().spool_dropped_total.get(), 0);
    let left = publisher.close(Duration::from_millis(200)).await;
    assert!(
        left >= ASSOCIATIONS,
        "unsent events stay in the spool: {left}"
    );
    // Every association once, in order, on disk.
    let mut ids = Vec::new();
    let mut segments: Vec<_> = std::fs::read_dir(dir.path().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    segments.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.strip_prefix("seg-"))
            .and_then(|n| n.parse::<u64>().ok())
    });
    for seg in segments {
        for line in std::fs::read_to_string(&seg).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["kind"] == "association" {
                ids.push(v["assoc"].as_u64().unwrap());
            }
        }
    }
    let expected: Vec<u64> = (1..=ASSOCIATIONS).collect();
    assert_eq!(ids.len(), expected.len());
    assert!(ids == expected, "association events in the order they came");
}
