//! Item 2: C-ECHO round-trip latency on one open association per path, interleaved.

use std::net::SocketAddr;
use std::time::Instant;

use serde_json::{Value, json};

use crate::Ctx;
use crate::dicom::{self, EchoAssociation};
use crate::store::{self, Relay};
use crate::util;

pub fn run(ctx: &Ctx, scp: SocketAddr) -> anyhow::Result<Value> {
    let relays: Vec<Relay> = vec![
        Relay {
            name: "direct".into(),
            proc: None,
            addr: scp,
            metrics: None,
            record_dir: None,
            large_only: false,
        },
        store::start_socat(ctx, scp, true)?,
        store::start_dicomtap(ctx, scp, None, &[])?,
        store::start_dicomtap(ctx, scp, Some("full"), &[])?,
    ];
    let mut assocs = Vec::new();
    for r in &relays {
        assocs.push(
            EchoAssociation::open(r.addr, "STORESCP")
                .map_err(|e| anyhow::anyhow!("C-ECHO association via {}: {e}", r.name))?,
        );
    }
    let rounds = ctx.echo_rounds;
    let per_round = ctx.echo_per_round;
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds * per_round); relays.len()];
    let mut next_id: u16 = 2;
    // Warm-up round, not counted.
    for a in &mut assocs {
        for _ in 0..50 {
            let rq = dicom::echo_pdata(next_id)?;
            next_id = next_id.wrapping_add(1).max(1);
            a.echo_raw(&rq)?;
        }
    }
    for round in 0..rounds {
        for k in 0..relays.len() {
            let i = (k + round) % relays.len();
            let a = &mut assocs[i];
            for _ in 0..per_round {
                let rq = dicom::echo_pdata(next_id)?;
                next_id = next_id.wrapping_add(1).max(1);
                let t = Instant::now();
                a.echo_raw(&rq)?;
                samples[i].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    for (a, r) in assocs.into_iter().zip(&relays) {
        a.release()
            .map_err(|e| anyhow::anyhow!("release via {}: {e}", r.name))?;
    }
    let mut rows = Vec::new();
    let mut direct = (0.0, 0.0);
    for (i, r) in relays.iter().enumerate() {
        let mut s = samples[i].clone();
        s.sort_by(f64::total_cmp);
        let p50 = util::percentile(&s, 50.0);
        let p99 = util::percentile(&s, 99.0);
        if i == 0 {
            direct = (p50, p99);
        }
        rows.push(json!({
            "path": r.name,
            "n": s.len(),
            "p50_us": p50,
            "p90_us": util::percentile(&s, 90.0),
            "p99_us": p99,
            "max_us": s.last().copied().unwrap_or(f64::NAN),
            "added_p50_us": p50 - direct.0,
            "added_p99_us": p99 - direct.1,
        }));
        eprintln!(
            "e2e: echo {:28} p50 {:8.1} us  p99 {:8.1} us",
            r.name, p50, p99
        );
    }
    Ok(json!({
        "scp": "storescp --fork",
        "rounds": rounds,
        "echoes_per_round": per_round,
        "rows": rows,
    }))
}
