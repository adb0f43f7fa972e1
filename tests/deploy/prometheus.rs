use super::*;

// ---------------------------------------------------------------------------------------
// Prometheus

#[test]
fn promtool_accepts_config_and_rules() {
    if !require("promtool_accepts_config_and_rules", &["promtool"]) {
        return;
    }
    let logs = temp_dir("deploy-promtool");
    let prom = deploy_dir().join("prometheus");
    let (ok, out) = run(
        "promtool-config",
        cmd(
            "promtool",
            &[
                "check",
                "config",
                prom.join("prometheus.yml").to_str().unwrap(),
            ],
        ),
        logs.path(),
    );
    assert!(ok, "promtool check config failed:\n{out}");
    assert!(
        out.contains("1 rule files found"),
        "prometheus.yml should load alerts.yml:\n{out}"
    );
    let (ok, out) = run(
        "promtool-rules",
        cmd(
            "promtool",
            &["check", "rules", prom.join("alerts.yml").to_str().unwrap()],
        ),
        logs.path(),
    );
    assert!(ok, "promtool check rules failed:\n{out}");

    // Every scrape target of the compose stack's Prometheus is a compose service.
    let config = yaml(&prom.join("prometheus.yml"));
    let compose = yaml(&deploy_dir().join("compose/compose.yaml"));
    let jobs = arr(&config, "/scrape_configs");
    let dicomtap = jobs
        .iter()
        .find(|j| j["job_name"] == "dicomtap")
        .expect("a scrape job named dicomtap (the alerts use job=\"dicomtap\")");
    for target in arr(dicomtap, "/static_configs/0/targets") {
        let (host, port) = target.as_str().unwrap().split_once(':').unwrap();
        assert!(
            compose["services"].get(host).is_some(),
            "scrape target {host} is not a compose service"
        );
        assert_eq!(port, "9464", "dicomtap's metrics port");
    }
    assert_eq!(
        arr(&config, "/rule_files"),
        &vec![json!("alerts.yml")],
        "compose mounts alerts.yml beside prometheus.yml"
    );
}

/// The HTTPS example (mutual TLS and the token): promtool accepts it once the files it
/// names are beside it, and it scrapes what the proxy's `[metrics_tls]` serves.
#[test]
fn promtool_accepts_the_https_scrape_example() {
    if !require("promtool_accepts_the_https_scrape_example", &["promtool"]) {
        return;
    }
    let tmp = temp_dir("deploy-promtool-https");
    let example = deploy_dir().join("prometheus/prometheus-https.yml");
    let copy = tmp.path().join("prometheus-https.yml");
    std::fs::copy(&example, &copy).unwrap();
    let check = || {
        run(
            "promtool-https",
            cmd("promtool", &["check", "config", copy.to_str().unwrap()]),
            tmp.path(),
        )
    };
    // promtool looks for the files relative to the configuration.
    let (ok, out) = check();
    assert!(!ok, "promtool accepted missing TLS files:\n{out}");
    let files = tmp.path().join("dicomtap-tls");
    std::fs::create_dir_all(&files).unwrap();
    for f in ["ca.pem", "scraper.pem", "scraper.key", "metrics-token"] {
        std::fs::write(files.join(f), "").unwrap();
    }
    let (ok, out) = check();
    assert!(ok, "promtool check config failed:\n{out}");
    let config = yaml(&example);
    let job = arr(&config, "/scrape_configs")
        .iter()
        .find(|j| j["job_name"] == "dicomtap")
        .expect("a scrape job named dicomtap (the alerts use job=\"dicomtap\")")
        .clone();
    assert_eq!(str_at(&job, "/scheme"), "https");
    for key in ["ca_file", "cert_file", "key_file"] {
        assert!(
            job["tls_config"][key].is_string(),
            "tls_config.{key}: a client certificate for [metrics_tls] client_ca"
        );
    }
    assert_eq!(str_at(&job, "/authorization/type"), "Bearer");
}

#[test]
fn alert_rules_fire_as_intended() {
    if !require("alert_rules_fire_as_intended", &["promtool"]) {
        return;
    }
    let tmp = temp_dir("deploy-alert-tests");
    let prom = deploy_dir().join("prometheus");
    // promtool compares annotations verbatim: test the expressions on a copy without them.
    let mut rules = yaml(&prom.join("alerts.yml"));
    for group in rules["groups"].as_array_mut().unwrap() {
        for rule in group["rules"].as_array_mut().unwrap() {
            rule.as_object_mut().unwrap().remove("annotations");
        }
    }
    std::fs::write(
        tmp.path().join("alerts.yml"),
        serde_json::to_string_pretty(&rules).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        prom.join("alerts_test.yml"),
        tmp.path().join("alerts_test.yml"),
    )
    .unwrap();
    let (ok, out) = run(
        "promtool-test-rules",
        cmd(
            "promtool",
            &[
                "test",
                "rules",
                tmp.path().join("alerts_test.yml").to_str().unwrap(),
            ],
        ),
        tmp.path(),
    );
    assert!(ok, "promtool test rules failed:\n{out}");

    // Every alert has a test case.
    let tests = read(&prom.join("alerts_test.yml"));
    for rule in alert_rules(&prom.join("alerts.yml")) {
        let name = str_at(&rule, "/alert");
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "alerts_test.yml has no case for {name}"
        );
    }
}

#[test]
fn prometheus_rule_matches_alerts_file() {
    let alerts = yaml(&deploy_dir().join("prometheus/alerts.yml"));
    let rule = yaml(&deploy_dir().join("kubernetes/prometheusrule.yaml"));
    assert_eq!(str_at(&rule, "/kind"), "PrometheusRule");
    assert_eq!(str_at(&rule, "/apiVersion"), "monitoring.coreos.com/v1");
    assert!(
        rule["spec"]["groups"] == alerts["groups"],
        "deploy/kubernetes/prometheusrule.yaml differs from deploy/prometheus/alerts.yml: \
         copy alerts.yml's groups under spec:"
    );
}

// ---------------------------------------------------------------------------------------
// Unit tests of the PromQL helpers of main.rs

#[test]
fn promql_references_are_extracted() {
    let r = promql_refs(
        r#"histogram_quantile(0.99, sum by (command, le) (rate(dicomtap_dimse_response_seconds_bucket{command!~"C-MOVE-RSP|x}", instance=~"$instance"}[$__rate_interval]))) / on() dicomtap_x"#,
    );
    assert_eq!(
        r.metrics,
        BTreeSet::from([
            "dicomtap_dimse_response_seconds_bucket".to_string(),
            "dicomtap_x".to_string()
        ])
    );
    assert_eq!(
        r.selector_labels,
        vec![
            (
                "dicomtap_dimse_response_seconds_bucket".to_string(),
                "command".to_string()
            ),
            (
                "dicomtap_dimse_response_seconds_bucket".to_string(),
                "instance".to_string()
            )
        ]
    );
    assert_eq!(
        r.grouping_labels,
        BTreeSet::from(["command".to_string(), "le".to_string()])
    );
    assert_eq!(
        grafana_to_promql(r#"rate(x{a=~"$instance"}[$__rate_interval])"#),
        r#"rate(x{a=~".*"}[5m])"#
    );
    let e = Exported::parse(
        "# TYPE dicomtap_h histogram\ndicomtap_h_bucket{le=\"1\",command=\"a,\\\"b\"} 1\n# TYPE dicomtap_c counter\n",
    );
    assert!(e.series_labels["dicomtap_h_bucket"].contains("command"));
    assert!(e.series_labels.contains_key("dicomtap_h_count"));
    assert!(!e.series_labels.contains_key("dicomtap_h"));
    assert!(e.series_labels.contains_key("dicomtap_c"));
}
