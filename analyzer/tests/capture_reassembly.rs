//! Reassembly against known streams: synthesized conversations written as pcap files in
//! deterministic orders (shuffled, duplicated, overlapping, dropped, wrapped).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture_support;

use capture_support::{
    ACK, FIN, Link, PSH, Part, Prng, RST, Recorder, SYN, Script, Seg, all_segments, assert_clean,
    only_conn, process, retime, run, write_pcap,
};
use dicomtap_analyzer::capture::{CaptureConfig, CloseReason, RequestorBy, Side, StreamEnd};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn in_order() {
    let dir = tmp();
    let script = Script::new(1, 5000, 3000);
    let path = dir.path().join("in_order.pcap");
    let (rec, stats) = process(&path, &all_segments(&script, 2, 300));
    assert_clean(&rec, &script);
    assert_eq!(only_conn(&rec).requestor_known_by, RequestorBy::SynSeen);
    assert_eq!(
        (stats.gaps, stats.retransmissions, stats.out_of_order),
        (0, 0, 0)
    );
}

#[test]
fn shuffled_data_and_fins() {
    let dir = tmp();
    for seed in 1..20u64 {
        let script = Script::new(seed, 4000 + seed as usize * 7, 2500);
        let (hs, data, fin) = script.segments(seed, 120);
        let mut tail: Vec<Seg> = data.into_iter().chain(fin).collect();
        Prng::new(seed * 31).shuffle(&mut tail);
        let mut segs: Vec<Seg> = hs.into_iter().chain(tail).collect();
        retime(&mut segs);
        let path = dir.path().join(format!("shuffled_{seed}.pcap"));
        let (rec, stats) = process(&path, &segs);
        assert_clean(&rec, &script);
        assert!(stats.out_of_order > 0);
        assert_eq!(stats.gaps, 0);
    }
}

#[test]
fn duplicated_segments_are_delivered_once() {
    let dir = tmp();
    let script = Script::new(7, 6000, 6000);
    let (hs, data, fin) = script.segments(8, 200);
    let mut rng = Prng::new(9);
    let mut tail = Vec::new();
    for s in data {
        tail.push(s.clone());
        if rng.below(3) == 0 {
            tail.push(s);
        }
    }
    // And a later retransmission burst of some early segments, then shuffle a bit.
    let again: Vec<Seg> = tail.iter().take(10).cloned().collect();
    tail.extend(again);
    Prng::new(10).shuffle(&mut tail);
    let mut segs: Vec<Seg> = hs.into_iter().chain(tail).chain(fin).collect();
    retime(&mut segs);
    let path = dir.path().join("dup.pcap");
    let (rec, stats) = process(&path, &segs);
    assert_clean(&rec, &script);
    assert!(stats.retransmissions + stats.overlaps > 0);
    assert_eq!(stats.overlap_conflicts, 0);
}

/// Re-segment the client stream so that segments overlap their neighbours.
fn overlapping(script: &Script, seed: u64, corrupt_overlaps: bool) -> Vec<Seg> {
    let (hs, _, fin) = script.segments(seed, 100);
    let mut rng = Prng::new(seed);
    let c1 = script.c_isn.wrapping_add(1);
    let s1 = script.s_isn.wrapping_add(1);
    let mut segs = Vec::new();
    let mut at = 0usize;
    let n = script.c_data.len();
    while at < n {
        let back = (rng.below(40) as usize).min(at);
        let start = at - back;
        let end = (at + 1 + rng.below(150) as usize).min(n);
        let mut payload = script.c_data[start..end].to_vec();
        if corrupt_overlaps && back > 0 {
            // A later copy that disagrees about bytes already sent: the first must win.
            payload[0] ^= 0xFF;
        }
        segs.push(Seg {
            ts_us: 0,
            src: script.client,
            dst: script.server,
            seq: c1.wrapping_add(start as u32),
            ack: s1,
            flags: ACK,
            payload,
        });
        at = end;
    }
    segs.push(Seg {
        ts_us: 0,
        src: script.server,
        dst: script.client,
        seq: s1,
        ack: c1,
        flags: ACK | PSH,
        payload: script.s_data.clone(),
    });
    Prng::new(seed + 1).shuffle(&mut segs);
    let mut all: Vec<Seg> = hs.into_iter().chain(segs).chain(fin).collect();
    retime(&mut all);
    all
}

#[test]
fn overlapping_segments() {
    let dir = tmp();
    for seed in 1..10u64 {
        let script = Script::new(seed, 3000, 500);
        let path = dir.path().join(format!("overlap_{seed}.pcap"));
        let (rec, stats) = process(&path, &overlapping(&script, seed, false));
        assert_clean(&rec, &script);
        assert!(stats.overlaps > 0);
        assert_eq!(stats.overlap_conflicts, 0);
    }
}

#[test]
fn conflicting_overlaps_keep_the_first_copy() {
    let dir = tmp();
    let script = Script::new(3, 3000, 500);
    // In order: every overlap is with bytes already delivered, so the originals stay.
    let (hs, _, fin) = script.segments(3, 100);
    let mut segs = overlapping(&script, 3, true);
    segs.retain(|s| !s.payload.is_empty());
    segs.sort_by_key(|s| (s.src != script.client, s.seq.wrapping_sub(script.c_isn)));
    let mut all: Vec<Seg> = hs.into_iter().chain(segs).chain(fin).collect();
    retime(&mut all);
    let path = dir.path().join("conflict_inorder.pcap");
    let (rec, _) = process(&path, &all);
    assert_clean(&rec, &script);

    // Buffered: a later, different copy of buffered bytes is counted as a conflict.
    let (hs, data, fin) = script.segments(4, 100);
    let client: Vec<Seg> = data
        .iter()
        .filter(|s| s.src == script.client)
        .cloned()
        .collect();
    let server: Vec<Seg> = data
        .iter()
        .filter(|s| s.src != script.client)
        .cloned()
        .collect();
    let mut bad = client[2].clone();
    bad.payload.iter_mut().for_each(|b| *b ^= 0x55);
    let mut order = vec![client[2].clone(), bad];
    order.push(client[0].clone());
    order.push(client[1].clone());
    order.extend(client[3..].iter().cloned());
    let mut all: Vec<Seg> = hs
        .into_iter()
        .chain(order)
        .chain(server)
        .chain(fin)
        .collect();
    retime(&mut all);
    let path = dir.path().join("conflict_buffered.pcap");
    let (rec, stats) = process(&path, &all);
    assert_clean(&rec, &script);
    assert_eq!(stats.overlap_conflicts, 1);
}

/// Expected parts when the given client byte ranges were never captured.
fn with_holes(data: &[u8], holes: &[(usize, usize)]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut at = 0;
    for &(s, e) in holes {
        if s > at {
            parts.push(Part::Data(data[at..s].to_vec()));
        }
        parts.push(Part::Gap((e - s) as u64));
        at = e;
    }
    if at < data.len() {
        parts.push(Part::Data(data[at..].to_vec()));
    }
    parts.push(Part::End(StreamEnd::Close));
    parts
}

/// Drop some client segments; their ranges must come out as gaps, the rest exact.
fn dropped_case(
    seed: u64,
    shuffle: bool,
    cfg: CaptureConfig,
) -> (Recorder, Script, Vec<(usize, usize)>) {
    let dir = tmp();
    let script = Script::new(seed, 8000, 1000);
    let (hs, data, fin) = script.segments(seed, 150);
    let c1 = script.c_isn.wrapping_add(1);
    let mut rng = Prng::new(seed * 7);
    let mut kept = Vec::new();
    let mut holes: Vec<(usize, usize)> = Vec::new();
    for (i, s) in data.into_iter().enumerate() {
        let is_client = s.src == script.client;
        if is_client && i > 2 && rng.below(6) == 0 {
            let start = s.seq.wrapping_sub(c1) as usize;
            let end = start + s.payload.len();
            match holes.last_mut() {
                Some(h) if h.1 == start => h.1 = end,
                _ => holes.push((start, end)),
            }
        } else {
            kept.push(s);
        }
    }
    // Adjacent drops make one hole only when nothing was kept in between: merge those.
    if shuffle {
        Prng::new(seed).shuffle(&mut kept);
    }
    let mut all: Vec<Seg> = hs.into_iter().chain(kept).chain(fin).collect();
    retime(&mut all);
    let path = dir.path().join("dropped.pcap");
    write_pcap(&path, Link::Ethernet, &all, 65535);
    let (rec, res) = run(&path, cfg);
    res.expect("process");
    (rec, script, holes)
}

#[test]
fn dropped_segments_become_exact_gaps() {
    for seed in 1..12u64 {
        for shuffle in [false, true] {
            let (rec, script, holes) = dropped_case(seed, shuffle, CaptureConfig::default());
            assert!(!holes.is_empty());
            let conn = only_conn(&rec);
            assert_eq!(
                rec.parts(conn.id, Side::Requestor),
                with_holes(&script.c_data, &holes),
                "seed {seed} shuffle {shuffle}"
            );
            assert_eq!(
                rec.parts(conn.id, Side::Acceptor),
                vec![
                    Part::Data(script.s_data.clone()),
                    Part::End(StreamEnd::Close)
                ]
            );
        }
    }
}

#[test]
fn small_buffer_cap_declares_gaps_early_but_same_stream() {
    let cfg = CaptureConfig {
        max_buffered_per_direction: 600,
        ..CaptureConfig::default()
    };
    let (rec, script, holes) = dropped_case(5, false, cfg);
    let conn = only_conn(&rec);
    assert_eq!(
        rec.parts(conn.id, Side::Requestor),
        with_holes(&script.c_data, &holes)
    );
    // The first gap came long before the end of the stream: it was the cap, not the
    // flush at the close (which would stamp it with the close's time).
    let first_gap_ts = rec
        .events
        .iter()
        .find_map(|e| match e {
            capture_support::Ev::Gap(_, _, ts, _) => Some(*ts),
            _ => None,
        })
        .expect("a gap");
    let end_ts = rec
        .events
        .iter()
        .find_map(|e| match e {
            capture_support::Ev::End(_, Side::Requestor, ts, _) => Some(*ts),
            _ => None,
        })
        .expect("an end");
    assert!(first_gap_ts + 1000 < end_ts, "{first_gap_ts} vs {end_ts}");
}

#[test]
fn sequence_numbers_wrap() {
    let dir = tmp();
    for (c_isn, s_isn) in [(u32::MAX - 100, u32::MAX), (u32::MAX - 5000, 7)] {
        let mut script = Script::new(11, 9000, 4000);
        script.c_isn = c_isn;
        script.s_isn = s_isn;
        let (hs, data, fin) = script.segments(12, 400);
        let mut data = data;
        Prng::new(13).shuffle(&mut data);
        let mut all: Vec<Seg> = hs.into_iter().chain(data).chain(fin).collect();
        retime(&mut all);
        let path = dir.path().join("wrap.pcap");
        let (rec, _) = process(&path, &all);
        assert_clean(&rec, &script);
    }
}

#[test]
fn mid_connection_start_uses_the_associate_rq_then_ports() {
    let dir = tmp();
    let script = Script::new(21, 3000, 2000);
    let (_, data, fin) = script.segments(22, 200);
    // No handshake: the first segments are the client's RQ (maybe tiny ones).
    let mut segs: Vec<Seg> = data.iter().cloned().chain(fin.iter().cloned()).collect();
    retime(&mut segs);
    let path = dir.path().join("mid_rq.pcap");
    let (rec, _) = process(&path, &segs);
    let conn = only_conn(&rec);
    assert_eq!(conn.requestor_known_by, RequestorBy::AssociateRq);
    assert_clean(&rec, &script);

    // Start later, with a server segment first: nothing looks like an RQ; port 104 decides.
    let first_server = data
        .iter()
        .position(|s| s.src == script.server)
        .expect("server seg");
    let mut segs: Vec<Seg> = data[first_server..].iter().cloned().chain(fin).collect();
    retime(&mut segs);
    let path = dir.path().join("mid_port.pcap");
    let (rec, _) = process(&path, &segs);
    let conn = only_conn(&rec);
    assert_eq!(conn.requestor_known_by, RequestorBy::PortHint);
    assert_eq!(conn.client, script.client);

    // Without a known port: the higher port is taken for the client.
    let cfg = CaptureConfig {
        server_ports: vec![],
        ..CaptureConfig::default()
    };
    let (rec, res) = run(&path, cfg);
    res.expect("process");
    let conn = only_conn(&rec);
    assert_eq!(conn.requestor_known_by, RequestorBy::Guess);
    assert_eq!(conn.client, script.client);
}

#[test]
fn reset_ends_the_sender_side_and_closes() {
    let dir = tmp();
    let script = Script::new(31, 500, 300);
    let (hs, data, _) = script.segments(32, 100);
    let last = data.last().cloned().expect("data");
    let rst = Seg {
        ts_us: 0,
        src: script.server,
        dst: script.client,
        seq: script.s_isn.wrapping_add(1 + script.s_data.len() as u32),
        ack: 0,
        flags: RST,
        payload: vec![],
    };
    // A stray ACK after the reset must not open a ghost connection.
    let mut stray = last.clone();
    stray.payload.clear();
    stray.flags = ACK;
    let mut all: Vec<Seg> = hs.into_iter().chain(data).chain([rst, stray]).collect();
    retime(&mut all);
    let path = dir.path().join("rst.pcap");
    let (rec, stats) = process(&path, &all);
    let conn = only_conn(&rec);
    assert_eq!(
        rec.parts(conn.id, Side::Acceptor),
        vec![
            Part::Data(script.s_data.clone()),
            Part::End(StreamEnd::Reset)
        ]
    );
    assert_eq!(
        rec.parts(conn.id, Side::Requestor),
        vec![Part::Data(script.c_data.clone())]
    );
    assert_eq!(rec.closes(), vec![(conn.id, CloseReason::Reset)]);
    assert_eq!(stats.no_connection_skipped, 1);
}

#[test]
fn gap_timeout_in_capture_time_and_ack_based_gaps() {
    let dir = tmp();
    let script = Script::new(41, 1000, 200);
    let c1 = script.c_isn.wrapping_add(1);
    let s1 = script.s_isn.wrapping_add(1);
    let (hs, _, _) = script.segments(42, 100);
    let seg = |ts_us: u64, off: usize, len: usize| Seg {
        ts_us,
        src: script.client,
        dst: script.server,
        seq: c1.wrapping_add(off as u32),
        ack: s1,
        flags: ACK | PSH,
        payload: script.c_data[off..off + len].to_vec(),
    };
    let t0 = hs[2].ts_us;
    // 100..200 is never captured; the server stays silent (no ACK) until 30 s later.
    let mut all = hs.clone();
    all.push(seg(t0 + 10, 0, 100));
    all.push(seg(t0 + 20, 200, 100));
    all.push(Seg {
        ts_us: t0 + 30_000_000,
        src: script.server,
        dst: script.client,
        seq: s1,
        ack: c1.wrapping_add(100),
        flags: ACK | PSH,
        payload: script.s_data[..10].to_vec(),
    });
    let path = dir.path().join("timeout.pcap");
    let (rec, stats) = process(&path, &all);
    let conn = only_conn(&rec);
    assert_eq!(
        rec.parts(conn.id, Side::Requestor),
        vec![
            Part::Data(script.c_data[..100].to_vec()),
            Part::Gap(100),
            Part::Data(script.c_data[200..300].to_vec())
        ]
    );
    // Declared by the timeout (before the capture ended), at the sweep's capture time.
    let gap_ts = rec
        .events
        .iter()
        .find_map(|e| match e {
            capture_support::Ev::Gap(_, _, ts, _) => Some(*ts),
            _ => None,
        })
        .expect("gap");
    assert_eq!(gap_ts, t0 + 30_000_000);
    assert_eq!(stats.gaps, 1);

    // Same, but the server acknowledges beyond the hole: gap after the 200 ms grace.
    let mut all = hs;
    all.push(seg(t0 + 10, 0, 100));
    all.push(seg(t0 + 20, 200, 100));
    all.push(Seg {
        ts_us: t0 + 30,
        src: script.server,
        dst: script.client,
        seq: s1,
        ack: c1.wrapping_add(300),
        flags: ACK,
        payload: vec![],
    });
    all.push(seg(t0 + 100_000, 300, 10));
    all.push(seg(t0 + 300_000, 310, 10));
    let path = dir.path().join("acked.pcap");
    let (rec, _) = process(&path, &all);
    let gap_ts = rec
        .events
        .iter()
        .find_map(|e| match e {
            capture_support::Ev::Gap(_, _, ts, _) => Some(*ts),
            _ => None,
        })
        .expect("gap");
    assert_eq!(gap_ts, t0 + 300_000);
}

#[test]
fn snapped_payloads_are_gaps() {
    let dir = tmp();
    let script = Script::new(51, 3000, 1000);
    let segs = all_segments(&script, 52, 300);
    let path = dir.path().join("snap.pcap");
    // Ethernet 14 + IPv4 24 + TCP 32 = 70 header bytes: keep 30 payload bytes per frame.
    write_pcap(&path, Link::Ethernet, &segs, 100);
    let (rec, res) = run(&path, CaptureConfig::default());
    let stats = res.expect("process");
    let conn = only_conn(&rec);
    let mut expected = Vec::new();
    let c1 = script.c_isn.wrapping_add(1);
    for s in segs
        .iter()
        .filter(|s| s.src == script.client && !s.payload.is_empty())
    {
        let off = s.seq.wrapping_sub(c1) as usize;
        let kept = s.payload.len().min(30);
        expected.push(Part::Data(script.c_data[off..off + kept].to_vec()));
        if s.payload.len() > 30 {
            expected.push(Part::Gap((s.payload.len() - 30) as u64));
        }
    }
    // Merge adjacent data the way the recorder does.
    let mut merged: Vec<Part> = Vec::new();
    for p in expected {
        match (merged.last_mut(), p) {
            (Some(Part::Data(a)), Part::Data(b)) => a.extend_from_slice(&b),
            (Some(Part::Gap(a)), Part::Gap(b)) => *a += b,
            (_, p) => merged.push(p),
        }
    }
    merged.push(Part::End(StreamEnd::Close));
    assert_eq!(rec.parts(conn.id, Side::Requestor), merged);
    assert!(stats.snapped_packets > 0);
}

#[test]
fn port_reuse_with_a_new_syn_is_a_new_connection() {
    let dir = tmp();
    let a = Script::new(61, 500, 200);
    let mut b = Script::new(62, 700, 100);
    b.c_isn = 777_777;
    b.s_isn = 888_888;
    // First connection never closes (no FIN captured), then the same 4-tuple reconnects.
    let (hs, data, _) = a.segments(63, 100);
    let mut all: Vec<Seg> = hs.into_iter().chain(data).collect();
    all.extend(super_all(&b));
    retime(&mut all);
    let path = dir.path().join("reuse.pcap");
    let (rec, _) = process(&path, &all);
    let opens = rec.opens();
    assert_eq!(opens.len(), 2);
    assert_eq!(rec.bytes(opens[0].id, Side::Requestor), a.c_data);
    assert_eq!(rec.bytes(opens[1].id, Side::Requestor), b.c_data);
    assert_eq!(
        rec.closes(),
        vec![
            (opens[0].id, CloseReason::Reused),
            (opens[1].id, CloseReason::Closed)
        ]
    );
}

fn super_all(s: &Script) -> Vec<Seg> {
    all_segments(s, 64, 100)
}

#[test]
fn many_interleaved_connections_and_idle_expiry() {
    let dir = tmp();
    let mut segs = Vec::new();
    let mut scripts = Vec::new();
    for i in 0..20u16 {
        let mut s = Script::new(100 + u64::from(i), 2000, 800);
        s.client = format!("10.0.1.{}:{}", i + 1, 40000 + i)
            .parse()
            .expect("addr");
        let (hs, data, fin) = s.segments(200 + u64::from(i), 150);
        let mut one: Vec<Seg> = hs.into_iter().chain(data).collect();
        if i % 2 == 0 {
            one.extend(fin);
        }
        segs.push(one);
        scripts.push(s);
    }
    // Round-robin interleave.
    let mut all = Vec::new();
    let mut idx = vec![0usize; segs.len()];
    loop {
        let mut any = false;
        for (k, one) in segs.iter().enumerate() {
            if idx[k] < one.len() {
                all.push(one[idx[k]].clone());
                idx[k] += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    retime(&mut all);
    // One unrelated packet an hour later expires the half-open ones.
    let mut late = all[0].clone();
    late.src = "192.0.2.1:1234".parse().expect("addr");
    late.dst = "192.0.2.2:5678".parse().expect("addr");
    late.payload = vec![1, 2, 3];
    late.flags = ACK;
    late.ts_us += 3_600_000_000;
    all.push(late);
    let path = dir.path().join("many.pcap");
    let (rec, stats) = process(&path, &all);
    let opens = rec.opens();
    assert_eq!(opens.len(), 21);
    for (i, s) in scripts.iter().enumerate() {
        let conn = opens.iter().find(|c| c.client == s.client).expect("conn");
        assert_eq!(rec.bytes(conn.id, Side::Requestor), s.c_data);
        assert_eq!(rec.bytes(conn.id, Side::Acceptor), s.s_data);
        let why = rec
            .closes()
            .into_iter()
            .find(|(c, _)| *c == conn.id)
            .expect("closed")
            .1;
        let want = if i % 2 == 0 {
            CloseReason::Closed
        } else {
            CloseReason::IdleTimeout
        };
        assert_eq!(why, want);
    }
    assert_eq!(stats.connections_expired, 10);

    // A tiny table evicts the least recently active connection instead of growing.
    let cfg = CaptureConfig {
        max_connections: 4,
        ..CaptureConfig::default()
    };
    let (rec, res) = run(&path, cfg);
    let stats = res.expect("process");
    assert!(stats.connections_evicted > 0);
    assert!(rec.closes().iter().any(|(_, w)| *w == CloseReason::Evicted));
    let _ = (FIN, SYN);
}
