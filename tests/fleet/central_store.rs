use super::*;

// ---------------------------------------------------------------------------------------
// Metrics: Prometheus remote write into VictoriaMetrics

fn victoria(dir: &Path, port: u16) -> Proc {
    let data = dir.join("vm-data");
    let args = [
        format!("-httpListenAddr=127.0.0.1:{port}"),
        format!("-storageDataPath={}", data.display()),
        // Instant queries see the newest samples (the default hides the last 30 s).
        "-search.latencyOffset=0s".into(),
        "-search.disableCache".into(),
    ];
    let mut p = Proc::spawn("victoria-metrics", command("victoria-metrics", &args), dir);
    assert!(
        wait_for_port(port, Duration::from_secs(30), Some(&mut p)),
        "{}",
        p.output()
    );
    p
}

/// `sum by (site) (EXPR)` from VictoriaMetrics' Prometheus query API.
fn query_by_site(port: u16, expr: &str) -> BTreeMap<String, f64> {
    let q: String = expr
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (_, body) = http_get_status_body(port, &format!("/api/v1/query?query={q}"), None);
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let site = r["metric"]["site"].as_str().unwrap_or("").to_string();
        let val = r["value"][1].as_str().unwrap_or("0").parse().unwrap_or(0.0);
        out.insert(site, val);
    }
    out
}

/// Two dicomtap instances with different site names carry real traffic; Prometheus
/// scrapes both and remote-writes into VictoriaMetrics with the site configuration that
/// deploy/fleet ships; the central store's PromQL API gives each site's figures, checked
/// against what was sent.
#[test]
fn remote_write_two_sites_into_the_central_store() {
    if !require(
        "fleet",
        &["prometheus", "victoria-metrics", "storescu", "storescp"],
    ) {
        return;
    }
    let Some((_, data)) = support::require_python("fleet") else {
        return;
    };
    let tmp = support::temp_dir("fleet-rw");
    let dir = tmp.path();
    let vm_port = free_port();
    let _vm = victoria(dir, vm_port);
    let (_scp, scp_port) = peers::storescp("storescp", &dir.join("received"), dir, &[]);
    let mk = |site: &str| {
        format!(
            "[identity]\nsite = \"{site}\"\ninstance = \"gw1\"\n\n[[listener]]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{scp_port}\"\n"
        )
    };
    let north = start_proxy(dir, "north", &mk("north"));
    let south = start_proxy(dir, "south", &mk("south"));
    // The site Prometheus configuration shipped in deploy/fleet, pointed at the two
    // instances and the central store on loopback, with short intervals.
    let shipped =
        std::fs::read_to_string(support::workspace_dir().join("deploy/fleet/prometheus-site.yml"))
            .unwrap();
    assert!(shipped.contains("remote_write:") && shipped.contains("/api/v1/write"));
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: dicomtap\n    static_configs:\n      - targets: ['127.0.0.1:{}', '127.0.0.1:{}']\n\
             remote_write:\n  - url: http://127.0.0.1:{vm_port}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n",
            north.metrics, south.metrics
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let args = [
        format!("--config.file={}", prom_cfg.display()),
        format!("--storage.agent.path={}", dir.join("prom-agent").display()),
        format!("--web.listen-address=127.0.0.1:{prom_port}"),
        "--enable-feature=agent".into(),
    ];
    let mut prom = Proc::spawn("prometheus", command("prometheus", &args), dir);
    assert!(
        wait_for_port(prom_port, Duration::from_secs(30), Some(&mut prom)),
        "{}",
        prom.output()
    );
    let all: Vec<PathBuf> = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"]
        .iter()
        .map(|f| data.test_files.join(f))
        .collect();
    // North: 3 associations of 3 instances; south: 1 association of 2.
    for _ in 0..3 {
        storescu(dir, north.ports[0], "MOD_N", "STORESCP", &all);
    }
    storescu(dir, south.ports[0], "MOD_S", "STORESCP", &all[..2]);
    let want_stores = BTreeMap::from([("north".to_string(), 9.0), ("south".to_string(), 2.0)]);
    let want_assoc = BTreeMap::from([("north".to_string(), 3.0), ("south".to_string(), 1.0)]);
    let stores_q = "sum by (site) (dicomtap_dimse_messages_total{command=\"C-STORE-RQ\"})";
    let assoc_q = "sum by (site) (dicomtap_associations_total{result=\"accepted\"})";
    let ok = wait_until(Duration::from_secs(60), || {
        query_by_site(vm_port, stores_q) == want_stores
            && query_by_site(vm_port, assoc_q) == want_assoc
    });
    assert!(
        ok,
        "central store: stores {:?}, associations {:?}\n{}",
        query_by_site(vm_port, stores_q),
        query_by_site(vm_port, assoc_q),
        prom.output()
    );
    // The instance label of each site's own series is bounded to its instances.
    let inst = query_by_site(
        vm_port,
        "count by (site) (count by (site, instance_name) (dicomtap_associations_active))",
    );
    assert_eq!(
        inst,
        BTreeMap::from([("north".to_string(), 1.0), ("south".to_string(), 1.0)])
    );
    // The shipped alert rules and dashboard queries are valid for promtool and evaluate
    // on the central store.
    let rules = support::workspace_dir().join("deploy/fleet/alerts-fleet.yml");
    let check = run(
        "promtool",
        command("promtool", &["check", "rules", rules.to_str().unwrap()]),
        dir,
        Duration::from_secs(30),
    );
    assert!(check.status.success(), "{}", check.text());
    let mut exprs: Vec<String> = Vec::new();
    for line in std::fs::read_to_string(&rules).unwrap().lines() {
        if let Some(e) = line.trim().strip_prefix("expr: ") {
            exprs.push(e.to_string());
        }
    }
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(support::workspace_dir().join("deploy/fleet/grafana/fleet.json"))
            .unwrap(),
    )
    .unwrap();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"].as_str().unwrap();
            exprs.push(
                e.replace("$__rate_interval", "1m")
                    .replace("$__range", "1h")
                    .replace("$site", ".*"),
            );
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    for e in &exprs {
        let q: String = e
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (status, body) =
            http_get_status_body(vm_port, &format!("/api/v1/query?query={q}"), None);
        assert!(status.contains("200"), "{e}: {status} {body}");
    }
    let drift = query_by_site(
        vm_port,
        "sum by (site) (dicomtap_dimse_messages_total{command=\"C-STORE-RSP\", status_class=\"success\"})",
    );
    assert_eq!(drift, want_stores, "successes per site");
    // How many series one site sends (the sizing figure of docs/fleet.md).
    let series = query_by_site(vm_port, "count by (site) ({site=~\"north|south\"})");
    eprintln!("series per site after this traffic: {series:?}");
}
