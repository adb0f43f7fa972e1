//! The proxy driven through its library API against in-process fake peers: byte-exact
//! forwarding, half-close, fault answers, limits, routing, recording files.

use std::net::SocketAddr;
use std::time::Duration;

use dicomtap_proxy::config::{Limits, ListenerConfig, ProxyConfig, RecordingConfig, Route};
use dicomtap_proxy::server::RunningProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

type R = Result<(), Box<dyn std::error::Error>>;

const T: Duration = Duration::from_secs(10);

fn localhost0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config(upstream: SocketAddr) -> ProxyConfig {
    ProxyConfig {
        listeners: vec![ListenerConfig::new(localhost0(), upstream)],
        metrics_listen: None,
        ..ProxyConfig::default()
    }
}

/// An A-ASSOCIATE-RQ with the given called AE (just enough structure for routing).
fn associate_rq(called: &str) -> Vec<u8> {
    let mut body = vec![0, 1, 0, 0];
    body.extend_from_slice(format!("{called:<16}").as_bytes());
    body.extend_from_slice(b"TESTSCU         ");
    body.extend_from_slice(&[0u8; 32]);
    // Application context item.
    let ctx = b"1.2.840.10008.3.1.1.1";
    body.extend_from_slice(&[0x10, 0, 0, ctx.len() as u8]);
    body.extend_from_slice(ctx);
    let mut pdu = vec![0x01, 0];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&body);
    pdu
}

async fn read_to_end(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    timeout(T, s.read_to_end(&mut v))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(v)
}

async fn read_exact_n(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    timeout(T, s.read_exact(&mut v))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(v)
}

#[tokio::test]
async fn arbitrary_bytes_pass_unchanged_both_ways_with_half_close() -> R {
    let up = TcpListener::bind(localhost0()).await?;
    let up_addr = up.local_addr()?;
    let proxy = RunningProxy::start(config(up_addr)).await?;
    let addr = proxy.listen_addrs()[0];

    // Not DICOM at all, in odd chunk sizes: the proxy must not care.
    let to_up: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let to_client: Vec<u8> = (0..123_457u32).map(|i| (i * 13 + 5) as u8).collect();
    let (a, b) = (to_up.clone(), to_client.clone());
    let server = tokio::spawn(async move {
        let (mut s, _) = up.accept().await?;
        let got = read_to_end(&mut s).await?; // the client's FIN came through
        s.write_all(&b).await?; // and this direction is still open
        s.shutdown().await?;
        Ok::<_, std::io::Error>(got)
    });
    let mut c = TcpStream::connect(addr).await?;
    for chunk in a.chunks(7919) {
        c.write_all(chunk).await?;
    }
    c.shutdown().await?;
    let back = read_to_end(&mut c).await?;
    let got = timeout(T, server).await???;
    assert_eq!(got, to_up);
    assert_eq!(back, to_client);
    let summary = proxy.shutdown(Duration::from_secs(2)).await?;
    assert_eq!(summary.bytes_from_requestors, to_up.len() as u64);
    assert_eq!(summary.bytes_from_acceptors, to_client.len() as u64);
    assert_eq!(summary.cut_at_drain, 0);
    Ok(())
}

#[tokio::test]
async fn upstream_refused_gets_associate_rj_transient_congestion() -> R {
    // A port with nothing listening.
    let dead = TcpListener::bind(localhost0()).await?.local_addr()?;
    let proxy = RunningProxy::start(config(dead)).await?;
    let mut events = proxy.subscribe_events();
    let mut c = TcpStream::connect(proxy.listen_addrs()[0]).await?;
    c.write_all(&associate_rq("ANY")).await?;
    let answer = read_to_end(&mut c).await?;
    assert_eq!(answer, [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 1]);
    let text = proxy.metrics().render();
    assert!(
        text.contains("dicomtap_upstream_errors_total{kind=\"refused\"} 1"),
        "{text}"
    );
    let mut saw = Vec::new();
    while let Ok(Ok(ev)) = timeout(Duration::from_millis(500), events.recv()).await {
        saw.push(serde_json::to_value(&ev)?["event"].to_string());
    }
    assert!(saw.iter().any(|e| e.contains("upstream_error")), "{saw:?}");
    assert!(saw.iter().any(|e| e.contains("proxy_reject")), "{saw:?}");
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn upstream_reset_gives_client_an_abort() -> R {
    let up = TcpListener::bind(localhost0()).await?;
    let proxy = RunningProxy::start(config(up.local_addr()?)).await?;
    let rq = associate_rq("ANY");
    let n = rq.len();
    let server = tokio::spawn(async move {
        let (mut s, _) = up.accept().await?;
        read_exact_n(&mut s, n).await?;
        // A whole (fake) PDU, then a reset.
        s.write_all(&[0x02, 0, 0, 0, 0, 2, 0, 1]).await?;
        s.flush().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.set_zero_linger()?;
        drop(s);
        Ok::<_, std::io::Error>(())
    });
    let mut c = TcpStream::connect(proxy.listen_addrs()[0]).await?;
    c.write_all(&rq).await?;
    let got = read_to_end(&mut c).await?;
    timeout(T, server).await???;
    assert_eq!(
        got,
        [0x02, 0, 0, 0, 0, 2, 0, 1, 0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]
    );
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn client_reset_gives_upstream_an_abort() -> R {
    let up = TcpListener::bind(localhost0()).await?;
    let proxy = RunningProxy::start(config(up.local_addr()?)).await?;
    let rq = associate_rq("ANY");
    let expected_len = rq.len();
    let server = tokio::spawn(async move {
        let (mut s, _) = up.accept().await?;
        read_to_end(&mut s).await
    });
    let c = TcpStream::connect(proxy.listen_addrs()[0]).await?;
    let mut c = c;
    c.write_all(&rq).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.set_zero_linger()?;
    drop(c);
    let got = timeout(T, server).await???;
    assert_eq!(got.len(), expected_len + 10, "{got:?}");
    assert_eq!(&got[expected_len..], [0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]);
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn half_pdu_then_reset_is_closed_without_abort() -> R {
    let up = TcpListener::bind(localhost0()).await?;
    let proxy = RunningProxy::start(config(up.local_addr()?)).await?;
    let server = tokio::spawn(async move {
        let (mut s, _) = up.accept().await?;
        read_to_end(&mut s).await
    });
    let mut c = TcpStream::connect(proxy.listen_addrs()[0]).await?;
    let rq = associate_rq("ANY");
    let half = &rq[..rq.len() / 2];
    c.write_all(half).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.set_zero_linger()?;
    drop(c);
    // An abort in the middle of a PDU would be garbage: the upstream just sees the close.
    let got = timeout(T, server).await???;
    assert_eq!(got, half);
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn association_limit_rejects_with_local_limit_exceeded() -> R {
    let up = TcpListener::bind(localhost0()).await?;
    let mut cfg = config(up.local_addr()?);
    cfg.limits = Limits {
        max_associations: 1,
        ..Limits::default()
    };
    let proxy = RunningProxy::start(cfg).await?;
    let addr = proxy.listen_addrs()[0];
    let first = TcpStream::connect(addr).await?;
    let (_held, _) = timeout(T, up.accept()).await??;
    let mut second = TcpStream::connect(addr).await?;
    second.write_all(&associate_rq("ANY")).await?;
    let answer = read_to_end(&mut second).await?;
    assert_eq!(answer, [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2]);
    drop(first);
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn routes_by_called_ae_title_and_forwards_the_rq_unchanged() -> R {
    let default_up = TcpListener::bind(localhost0()).await?;
    let archive = TcpListener::bind(localhost0()).await?;
    let mut listener = ListenerConfig::new(localhost0(), default_up.local_addr()?);
    listener.routes = vec![Route {
        called_ae: "ARCHIVE".into(),
        upstream: archive.local_addr()?.to_string(),
    }];
    let cfg = ProxyConfig {
        listeners: vec![listener],
        metrics_listen: None,
        ..ProxyConfig::default()
    };
    let proxy = RunningProxy::start(cfg).await?;
    let addr = proxy.listen_addrs()[0];
    for (called, up) in [("ARCHIVE", &archive), ("OTHER", &default_up)] {
        let rq = associate_rq(called);
        let mut c = TcpStream::connect(addr).await?;
        // Sent in two pieces: the proxy must wait for the whole PDU.
        c.write_all(&rq[..5]).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.write_all(&rq[5..]).await?;
        c.shutdown().await?;
        let (mut s, _) = timeout(T, up.accept()).await??;
        let got = read_to_end(&mut s).await?;
        assert_eq!(got, rq, "{called}");
    }
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn four_gigabyte_pdu_is_forwarded_and_others_unaffected() -> R {
    let up = TcpListener::bind(localhost0()).await?;
    let proxy = RunningProxy::start(config(up.local_addr()?)).await?;
    let addr = proxy.listen_addrs()[0];
    let server = tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..2 {
            let (s, _) = up.accept().await?;
            conns.push(s);
        }
        Ok::<_, std::io::Error>(conns)
    });
    let mut huge = TcpStream::connect(addr).await?;
    let mut head = vec![0x04, 0, 0xff, 0xff, 0xff, 0xff];
    head.extend_from_slice(&[0u8; 100_000]);
    huge.write_all(&head).await?;
    let mut small = TcpStream::connect(addr).await?;
    small.write_all(b"hello").await?;
    small.shutdown().await?;
    let mut conns = timeout(T, server).await???;
    // Whichever connection is which: one carries 100006 bytes so far, one "hello".
    let mut lens = Vec::new();
    for s in conns.iter_mut() {
        let mut buf = vec![0u8; 200_000];
        let mut total = 0;
        while let Ok(Ok(n)) = timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            total += n;
        }
        lens.push(total);
    }
    lens.sort();
    assert_eq!(lens, vec![5, head.len()]);
    drop(huge);
    proxy.shutdown(Duration::from_secs(1)).await?;
    Ok(())
}

#[tokio::test]
async fn recording_files_are_owner_only_and_readable_after_shutdown() -> R {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let up = TcpListener::bind(localhost0()).await?;
    let mut cfg = config(up.local_addr()?);
    cfg.recording = Some(RecordingConfig::new(dir.path()));
    let proxy = RunningProxy::start(cfg).await?;
    let files = proxy.recording_files();
    assert_eq!(files.len(), 2, "{files:?}");
    let server = tokio::spawn(async move {
        let (mut s, _) = up.accept().await?;
        let got = read_to_end(&mut s).await?;
        s.write_all(&got).await?;
        Ok::<_, std::io::Error>(())
    });
    let mut c = TcpStream::connect(proxy.listen_addrs()[0]).await?;
    c.write_all(&associate_rq("ANY")).await?;
    c.shutdown().await?;
    read_to_end(&mut c).await?;
    timeout(T, server).await???;
    let summary = proxy.shutdown(Duration::from_secs(2)).await?;
    for f in &summary.recording_files {
        let meta = std::fs::metadata(f)?;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
        assert!(meta.len() > 0, "{}", f.display());
    }
    let pcap = std::fs::read(&files[0])?;
    assert_eq!(&pcap[..4], &[0x0A, 0x0D, 0x0D, 0x0A]);
    let log = std::fs::read_to_string(&files[1])?;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        assert!(v["assoc"].is_u64(), "{line}");
    }
    assert!(log.contains("\"associate_rq\""), "{log}");
    Ok(())
}

/// A listener whose accept queue is full (backlog 0, one connection queued, nobody
/// accepting): a further connect to it hangs in SYN retries, as to a blackholed host.
async fn blackhole() -> std::io::Result<(TcpListener, SocketAddr, Vec<TcpStream>)> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(localhost0())?;
    let listener = sock.listen(0)?;
    let addr = listener.local_addr()?;
    let mut queued = Vec::new();
    for _ in 0..16 {
        match timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(s) => queued.push(s?),
            Err(_) => return Ok((listener, addr, queued)),
        }
    }
    Err(std::io::Error::other("the accept queue never filled"))
}

#[tokio::test]
async fn drain_cuts_associations_before_forwarding_with_one_closed_event_each() -> R {
    let dir = tempfile::tempdir()?;
    let (_hole, hole_addr, _queued) = blackhole().await?;
    // Listener 0 connects to the blackhole; listener 1 routes by called AE, so it waits
    // for the A-ASSOCIATE-RQ first. Both would wait 30 s: only the drain ends them.
    let mut routed = ListenerConfig::new(localhost0(), hole_addr);
    routed.routes = vec![Route {
        called_ae: "ROUTED".into(),
        upstream: hole_addr.to_string(),
    }];
    let mut cfg = config(hole_addr);
    cfg.listeners.push(routed);
    cfg.limits = Limits {
        max_associations: 2,
        // All from 127.0.0.1: no per-source cap (by default half of the limit).
        max_associations_per_source: Some(0),
        connect_timeout: Duration::from_secs(30),
        associate_rq_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    cfg.recording = Some(RecordingConfig::new(dir.path()));
    let proxy = RunningProxy::start(cfg).await?;
    let mut events = proxy.subscribe_events();
    let addrs = proxy.listen_addrs().to_vec();

    let mut connecting = TcpStream::connect(addrs[0]).await?;
    connecting.write_all(&associate_rq("ANY")).await?;
    let mut silent = TcpStream::connect(addrs[1]).await?;
    let mut accepted = 0;
    while accepted < 2 {
        let ev = timeout(T, events.recv()).await??;
        accepted += usize::from(serde_json::to_value(&ev)?["event"] == "accepted");
    }
    // Over the limit: the proxy waits for its RQ to answer with an RJ.
    let mut turned_away = TcpStream::connect(addrs[0]).await?;
    while serde_json::to_value(timeout(T, events.recv()).await??)?["event"] != "accepted" {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.active_associations(), 2);

    let started = std::time::Instant::now();
    let summary = proxy.shutdown(Duration::from_millis(300)).await?;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
    assert_eq!(summary.cut_at_drain, 3, "{summary:?}");
    // Every client was closed, none was left hanging.
    for c in [&mut connecting, &mut silent, &mut turned_away] {
        let _ = timeout(T, c.read_to_end(&mut Vec::new())).await?;
    }

    let log = summary
        .recording_files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .ok_or("no event log")?;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(log)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let mut how = std::collections::BTreeMap::new();
    for ev in &lines {
        let id = ev["assoc"].as_u64().ok_or("no assoc")?;
        match ev["event"].as_str() {
            Some("accepted") => {
                how.entry(id).or_insert_with(Vec::new);
            }
            Some("closed") => how
                .entry(id)
                .or_insert_with(Vec::new)
                .push(ev["how"].as_str().unwrap_or_default().to_string()),
            _ => {}
        }
    }
    let mut hows: Vec<String> = Vec::new();
    for (id, closed) in &how {
        assert_eq!(closed.len(), 1, "association {id}: {closed:?}\n{lines:#?}");
        hows.push(closed[0].clone());
    }
    hows.sort();
    assert_eq!(
        hows,
        [
            "cut at drain (answering with A-ASSOCIATE-RJ)",
            "cut at drain (connecting upstream)",
            "cut at drain (waiting for the first PDU)",
        ],
        "{lines:#?}"
    );
    Ok(())
}
