use super::*;

#[test]
fn dashboards_are_well_formed_and_their_queries_parse() {
    if !require(
        "dashboards_are_well_formed_and_their_queries_parse",
        &["promtool"],
    ) {
        return;
    }
    let files = dashboard_files();
    assert!(
        files.len() >= 4,
        "traffic, negotiation, latency, drift dashboards"
    );
    let mut uids = BTreeSet::new();
    for path in &files {
        let d = dashboard(path);
        let name = path.display();
        assert!(
            uids.insert(str_at(&d, "/uid").to_string()),
            "{name}: duplicate uid"
        );
        let vars = arr(&d, "/templating/list");
        assert!(
            vars.iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
            "{name}: needs the `datasource` variable"
        );
        let mut ids = BTreeSet::new();
        let mut panels: Vec<&Value> = arr(&d, "/panels").iter().collect();
        while let Some(p) = panels.pop() {
            assert!(
                ids.insert(p["id"].as_i64().expect("panel id")),
                "{name}: duplicate panel id {}",
                p["id"]
            );
            let g = &p["gridPos"];
            assert!(
                g["x"].as_i64().unwrap() + g["w"].as_i64().unwrap() <= 24,
                "{name}: panel {} is wider than the grid",
                p["title"]
            );
            for t in p
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                assert_eq!(
                    t.pointer("/datasource/uid").and_then(Value::as_str),
                    Some("${datasource}"),
                    "{name}: panel {} must query through the datasource variable",
                    p["title"]
                );
            }
            if let Some(children) = p.get("panels").and_then(Value::as_array) {
                panels.extend(children);
            }
        }
    }
    // Every expression parses: as recording rules for promtool.
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .filter(|q| q.label_values.is_none())
        .collect();
    assert!(queries.len() > 20, "dashboards hold their queries");
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({"record": format!("dashboard:query_{i}"), "expr": grafana_to_promql(&q.expr)}))
        .collect();
    let tmp = temp_dir("deploy-dashboards");
    let file = tmp.path().join("dashboard-queries.yml");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&json!({"groups": [{"name": "dashboards", "rules": rules}]}))
            .unwrap(),
    )
    .unwrap();
    let (ok, out) = run(
        "promtool-dashboards",
        cmd("promtool", &["check", "rules", file.to_str().unwrap()]),
        tmp.path(),
    );
    let listing: String = queries
        .iter()
        .enumerate()
        .map(|(i, q)| format!("query_{i}: {}\n", q.origin))
        .collect();
    assert!(
        ok,
        "a dashboard query does not parse:\n{out}\nqueries:\n{listing}"
    );
}

/// Sends traffic through a real proxy that touches every metric family, scrapes it,
/// and compares with what the dashboards and alerts reference.
#[test]
fn dashboards_and_alerts_use_only_exported_metrics() {
    if !require(
        "dashboards_and_alerts_use_only_exported_metrics",
        &["storescp", "echoscu", "promtool"],
    ) {
        return;
    }
    let tmp = temp_dir("deploy-metrics");
    let logs = tmp.path();
    let (scp_port, good_port, dead_listener_port, dead_upstream, metrics_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let store_dir = tmp.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    let mut storescp = Proc::spawn(
        "storescp",
        cmd(
            "storescp",
            &[
                "-aet",
                "STORESCP",
                "-od",
                store_dir.to_str().unwrap(),
                &scp_port.to_string(),
            ],
        ),
        logs,
    );
    assert!(
        wait_for_port(scp_port, Duration::from_secs(15), Some(&mut storescp)),
        "storescp did not start\n{}",
        storescp.output()
    );
    let config = tmp.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "metrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             [[listener]]\nname = \"good\"\nlisten = \"127.0.0.1:{good_port}\"\nupstream = \"127.0.0.1:{scp_port}\"\n\
             [[listener]]\nname = \"dead\"\nlisten = \"127.0.0.1:{dead_listener_port}\"\nupstream = \"127.0.0.1:{dead_upstream}\"\n\
             [limits]\nconnect_timeout = \"2s\"\n\
             [recording]\ndir = \"{}\"\npayload = \"headers\"\n",
            tmp.path().join("rec").display()
        ),
    )
    .unwrap();
    let _proxy = Proxy::start(
        "proxy",
        &["--config".into(), config.display().to_string()],
        logs,
    );
    assert!(wait_for_port(metrics_port, Duration::from_secs(10), None));
    let (status, body) = http_get_status_body(metrics_port, "/healthz", None);
    assert!(status.contains("200"), "/healthz: {status} {body}");

    let echo = |name: &str, port: u16, extra: &[&str]| {
        let mut args = vec!["-aet", "MODALITY", "-aec", "STORESCP", "-to", "10"];
        args.extend_from_slice(extra);
        let port = port.to_string();
        args.extend_from_slice(&["127.0.0.1", &port]);
        support::run(name, cmd("echoscu", &args), logs, Duration::from_secs(30))
    };
    // An echo (accepted association, C-ECHO, release) ...
    let out = echo("echoscu", good_port, &[]);
    assert!(
        out.status.success(),
        "echoscu through the proxy:\n{}",
        out.text()
    );
    // ... an echo aborted instead of released ...
    let _ = echo("echoscu-abort", good_port, &["--abort"]);
    // ... an upstream that refuses (the proxy answers A-ASSOCIATE-RJ) ...
    let out = echo("echoscu-dead", dead_listener_port, &[]);
    assert!(!out.status.success(), "the dead upstream should be refused");
    // ... and a PDU of an unknown type (a protocol finding), forwarded all the same.
    {
        let addr = SocketAddr::from((LOCALHOST, good_port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&[0x09, 0x00, 0x00, 0x00, 0x00, 0x02, 0xab, 0xcd])
            .unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }

    let mut queries = dashboard_queries();
    queries.extend(alert_queries());
    let referenced: BTreeSet<String> = queries
        .iter()
        .flat_map(|q| promql_refs(&q.expr).metrics)
        .collect();
    assert!(referenced.len() >= 10, "{referenced:?}");

    // The analysis runs beside forwarding: wait (bounded) for the series to appear.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, exported) = loop {
        let (status, text) = http_get_status_body(metrics_port, "/metrics", None);
        assert!(status.contains("200"), "/metrics: {status}");
        let exported = Exported::parse(&text);
        // (A family appears once it has a sample: empty ones are not exposed.)
        let missing = referenced
            .iter()
            .filter(|m| !exported.series_labels.contains_key(*m))
            .count();
        if missing == 0 || Instant::now() > deadline {
            break (text, exported);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    std::fs::write(tmp.path().join("metrics.txt"), &text).unwrap();

    // 1. Every referenced metric is exported.
    let mut problems = Vec::new();
    for q in &queries {
        let refs = promql_refs(&q.expr);
        for m in &refs.metrics {
            if !exported.series_labels.contains_key(m) {
                problems.push(format!("{}: {m} is not exported", q.origin));
            }
        }
        // 2. Every label in a selector exists on its metric (job and instance are
        //    added by Prometheus).
        for (m, l) in &refs.selector_labels {
            let known = exported.series_labels.get(m);
            if !matches!(l.as_str(), "job" | "instance") && known.is_some_and(|k| !k.contains(l)) {
                problems.push(format!("{}: {m} has no label {l}", q.origin));
            }
        }
        // 3. Every grouping label exists on one of the expression's metrics.
        let available: BTreeSet<&String> = refs
            .metrics
            .iter()
            .filter_map(|m| exported.series_labels.get(m))
            .flatten()
            .collect();
        for l in &refs.grouping_labels {
            if !refs.metrics.is_empty()
                && !matches!(l.as_str(), "job" | "instance")
                && !available.contains(l)
            {
                problems.push(format!(
                    "{}: grouping by {l}, which its metrics lack",
                    q.origin
                ));
            }
        }
        if q.expr.contains("histogram_quantile") && !refs.grouping_labels.contains("le") {
            problems.push(format!("{}: histogram_quantile without `le`", q.origin));
        }
        if let Some((m, l)) = &q.label_values
            && !matches!(l.as_str(), "job" | "instance")
            && exported
                .series_labels
                .get(m)
                .is_some_and(|k| !k.contains(l))
        {
            problems.push(format!(
                "{}: label_values({m}, {l}): no such label",
                q.origin
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "dashboards/alerts reference what the proxy does not export:\n{}\n\n/metrics:\n{text}",
        problems.join("\n")
    );
    // The rules use the protocol findings; conformance findings are not a metric yet.
    // When they become one, the alerts and the drift dashboard should use it.
    for family in exported.types.keys() {
        if !referenced.iter().any(|r| r.starts_with(family.as_str())) {
            eprintln!("note: {family} is exported but no dashboard or alert uses it");
        }
    }

    // 4. promtool's lint of the exposition text.
    let output = Command::new(support::find_executable("promtool").unwrap())
        .args(["check", "metrics"])
        .stdin(File::open(tmp.path().join("metrics.txt")).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("running promtool check metrics");
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
