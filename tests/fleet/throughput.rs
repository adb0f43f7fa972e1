use super::*;

// Throughput (the figures of docs/fleet.md): `cargo test --release --test fleet -- --ignored
// --nocapture publisher_throughput`.

#[test]
#[ignore = "a measurement, run by hand"]
fn publisher_throughput() {
    use dicomtap_fleet::schema::{Parties, StoreEvent};
    use dicomtap_fleet::{Body, Identity, Publisher, PublisherConfig};
    if !require("fleet", &["nats-server"]) {
        return;
    }
    let tmp = support::temp_dir("fleet-bench");
    let dir = tmp.path();
    let nats_port = free_port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n: u64 = 50_000;
    let body = |i: u64| {
        Body::Store(StoreEvent {
            parties: Parties {
                assoc: i / 10,
                calling_ae: Some("CT_SCANNER_01".into()),
                called_ae: Some("ARCHIVE".into()),
                client: Some("10.1.2.3:50412".into()),
                server: Some("10.1.9.9:104".into()),
            },
            message_id: Some((i % 60_000) as u16),
            sop_class: Some("1.2.840.10008.5.1.4.1.1.2".into()),
            sop_instance: format!("1.2.826.0.1.3680043.8.498.{i}.{}", i * 7),
            status: "0000".into(),
            status_class: "success".into(),
        })
    };
    let id = Identity::new("bench", "gw1").unwrap();
    // 1. The bus away: events into the spool only.
    let spool = dir.join("spool");
    let (spooled_s, bytes) = rt.block_on(async {
        let metrics = dicomtap_proxy::metrics::Metrics::new(1).unwrap();
        let mut cfg = PublisherConfig::new(format!("nats://127.0.0.1:{nats_port}"), &spool);
        cfg.spool_max_bytes = 1 << 30;
        let p = Publisher::start(id.clone(), cfg, metrics.registry()).unwrap();
        let s = p.sender();
        let t = std::time::Instant::now();
        for i in 0..n {
            while !s.send(i, body(i)) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        while p.pending() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        let bytes = p.metrics().spool_bytes.get();
        p.close(Duration::ZERO).await;
        (secs, bytes)
    });
    // 2. The bus comes: the backlog drains.
    let _bus = nats(dir, "nats", nats_port);
    let drained_s = rt.block_on(async {
        let metrics = dicomtap_proxy::metrics::Metrics::new(1).unwrap();
        let cfg = PublisherConfig::new(format!("nats://127.0.0.1:{nats_port}"), &spool);
        let t = std::time::Instant::now();
        let p = Publisher::start(id.clone(), cfg, metrics.registry()).unwrap();
        while p.pending() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = t.elapsed().as_secs_f64();
        p.close(Duration::from_secs(1)).await;
        secs
    });
    eprintln!(
        "{n} store events: spooled in {spooled_s:.2} s ({:.0}/s, {} bytes, {:.0} bytes/event); backlog published with acknowledgements in {drained_s:.2} s ({:.0}/s)",
        n as f64 / spooled_s,
        bytes,
        bytes as f64 / n as f64,
        n as f64 / drained_s
    );
}
