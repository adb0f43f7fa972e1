//! The deployment files of `deploy/`, checked on a machine without a Docker engine.
//!
//! What is checked, and how:
//! - **Prometheus**: `promtool check config` on deploy/prometheus/prometheus.yml,
//!   `promtool check rules` on alerts.yml, `promtool test rules` on alerts_test.yml (every
//!   alert fires on the series meant to trigger it; run against a copy of the rules
//!   without annotations, because promtool compares those verbatim), and the
//!   PrometheusRule of deploy/kubernetes/ carries exactly the same groups.
//! - **Metric names**: the real `dicomtap proxy` is started between DCMTK's `echoscu` and
//!   `storescp` (127.0.0.1, free ports), traffic is sent through it that touches every
//!   metric (an echo, an aborted echo, an unreachable upstream, a malformed PDU), and its
//!   /metrics is scraped. Every metric named by a dashboard query (targets and template
//!   variables) or an alert expression must be exported, every label named in their
//!   selectors and `by (...)` clauses must exist on it, and `promtool check metrics`
//!   must accept the exposition text.
//! - **Dashboards**: valid JSON, unique uids and panel ids, every query through the
//!   `datasource` variable, and every PromQL expression parses (they are handed to
//!   `promtool check rules` as recording rules, Grafana's variables substituted).
//! - **systemd**: `systemd-analyze verify` on a copy of the unit whose ExecStart points
//!   at the freshly built binary (verify needs the executable to exist), and
//!   `systemd-analyze security --offline=true --threshold=20` (exposure at most 2.0);
//!   the hardening directives are present, there is no ExecReload while the proxy does
//!   not handle SIGHUP, and the ExecStart flags are accepted by the real binary.
//! - **Configuration**: every dicomtap.toml in deploy/ (image, compose, systemd,
//!   Kubernetes ConfigMap) is accepted by the real proxy, and the ConfigMap's device
//!   statements pass `dicomtap statement check`.
//! - **Kubernetes and compose**: they parse as YAML, have the expected kinds and
//!   services, and fit together (selectors, port names, ConfigMap and claim names,
//!   metrics bound to 0.0.0.0:9464, probes on /healthz, restricted security context,
//!   recording volume large enough for the retention settings, compose mount sources
//!   exist).
//! - **Dockerfile**: multi-stage, Rust build stage, final stage non-root with no RUN (no
//!   shell needed), exec-form ENTRYPOINT/CMD, the expected ports, config path and volume.
//!
//! Needs `promtool` (Debian package `prometheus`), `systemd-analyze` and DCMTK; a missing
//! tool fails the test with the install hint (see tests/support/mod.rs).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    LOCALHOST, Proc, free_port, http_get_status_body, require, temp_dir, wait_for_port,
    workspace_dir,
};

const DICOMTAP: &str = env!("CARGO_BIN_EXE_dicomtap");

// ---------------------------------------------------------------------------------------
// Files

fn deploy_dir() -> PathBuf {
    workspace_dir().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every YAML document of a file (split on `---` lines), as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if current.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        }) {
            let v: serde_norway::Value = serde_norway::from_str(current)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()));
            docs.push(
                serde_json::to_value(v)
                    .unwrap_or_else(|e| panic!("{}: not JSON-like: {e}", path.display())),
            );
        }
        current.clear();
    };
    for line in text.lines() {
        if line.trim_end() == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

fn yaml(path: &Path) -> Value {
    let mut docs = yaml_docs(path);
    assert_eq!(
        docs.len(),
        1,
        "{}: expected one YAML document",
        path.display()
    );
    docs.remove(0)
}

fn toml_value(text: &str, what: &str) -> Value {
    let v: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    serde_json::to_value(v).expect("TOML values are JSON-like")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a Vec<Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no list at {pointer} in {v}"))
}

// ---------------------------------------------------------------------------------------
// Running things

fn cmd(program: &str, args: &[&str]) -> Command {
    support::command(program, args)
}

/// Runs to completion (bounded) and returns (success, stdout + stderr).
fn run(name: &str, command: Command, log_dir: &Path) -> (bool, String) {
    let out = support::run(name, command, log_dir, Duration::from_secs(60));
    (out.status.success(), out.text())
}

/// A started `dicomtap proxy`, stopped with SIGTERM (then SIGKILL) by its PID on drop.
struct Proxy {
    proc: Proc,
}

impl Proxy {
    /// Starts the proxy with `args` and waits (bounded) until it reports its listeners.
    fn start(name: &str, args: &[String], log_dir: &Path) -> Proxy {
        let mut command = Command::new(DICOMTAP);
        command.arg("proxy").args(args);
        let mut proc = Proc::spawn(name, command, log_dir);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if proc.stdout().contains("listening on") {
                return Proxy { proc };
            }
            if proc.try_wait().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{name}: the proxy did not start\n{}", proc.output());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.proc.stop("TERM", Duration::from_secs(10));
    }
}

// ---------------------------------------------------------------------------------------
// The exposition format

/// What a /metrics page exports: series names (histograms as their `_bucket`, `_sum`
/// and `_count` series) with the label names seen on them, and the family types.
#[derive(Default, Debug)]
struct Exported {
    types: BTreeMap<String, String>,
    series_labels: BTreeMap<String, BTreeSet<String>>,
}

impl Exported {
    fn parse(text: &str) -> Exported {
        let mut e = Exported::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                e.types.insert(name.to_string(), kind.to_string());
                let series: &[&str] = match kind {
                    "histogram" => &["_bucket", "_sum", "_count"],
                    "summary" => &["", "_sum", "_count"],
                    _ => &[""],
                };
                for s in series {
                    e.series_labels.entry(format!("{name}{s}")).or_default();
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            let labels = line[name_end..]
                .strip_prefix('{')
                .map(label_names)
                .unwrap_or_default();
            e.series_labels
                .entry(name.to_string())
                .or_default()
                .extend(labels);
        }
        e
    }
}

/// The label names of `a="x",b="y\"z"} 1` (the text after the opening brace).
fn label_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(c) = chars.peek().copied() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if name.is_empty() {
            return names;
        }
        names.push(name);
        // operator up to the opening quote, then the quoted value
        for c in chars.by_ref() {
            if c == '"' {
                break;
            }
        }
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// PromQL, as far as these checks need it

/// What an expression references: metric names (those starting with `dicomtap_`), the
/// label names of each one's selector, and the labels of `by (...)` / `without (...)`.
#[derive(Default, Debug)]
struct Refs {
    metrics: BTreeSet<String>,
    selector_labels: Vec<(String, String)>,
    grouping_labels: BTreeSet<String>,
}

fn promql_refs(expr: &str) -> Refs {
    let mut refs = Refs::default();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            // a string literal outside a selector: skip it
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '$' {
            // a Grafana variable such as $__rate_interval
            i += 1;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let next = skip_ws(i);
        if word == "by" || word == "without" {
            if next < chars.len() && chars[next] == '(' {
                let close = chars[next..]
                    .iter()
                    .position(|c| *c == ')')
                    .map(|p| next + p)
                    .unwrap_or(chars.len());
                let inner: String = chars[next + 1..close].iter().collect();
                refs.grouping_labels.extend(
                    inner
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
                i = close + 1;
            }
            continue;
        }
        if word.starts_with("dicomtap_") {
            refs.metrics.insert(word.clone());
            if next < chars.len() && chars[next] == '{' {
                let rest: String = chars[next + 1..].iter().collect();
                for l in label_names(&rest) {
                    refs.selector_labels.push((word.clone(), l));
                }
                // skip to the closing brace, minding quoted values
                let mut j = next + 1;
                let mut quoted = false;
                while j < chars.len() {
                    match chars[j] {
                        '\\' if quoted => j += 1,
                        '"' => quoted = !quoted,
                        '}' if !quoted => break,
                        _ => {}
                    }
                    j += 1;
                }
                i = j + 1;
            }
        }
    }
    refs
}

/// A PromQL expression with Grafana's variables replaced so that Prometheus parses it.
fn grafana_to_promql(expr: &str) -> String {
    let mut s = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    // Remaining template variables only stand inside regex matchers.
    while let Some(pos) = s.find('$') {
        let end = s[pos + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map(|e| pos + 1 + e)
            .unwrap_or(s.len());
        s.replace_range(pos..end, ".*");
    }
    s
}

/// One query of a dashboard or an alert rule, with where it comes from.
struct Query {
    origin: String,
    expr: String,
    /// Grafana `label_values(metric, label)` template queries.
    label_values: Option<(String, String)>,
}

fn dashboard_files() -> Vec<PathBuf> {
    let dir = deploy_dir().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn dashboard(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

fn dashboard_queries() -> Vec<Query> {
    let mut out = Vec::new();
    for path in dashboard_files() {
        let d = dashboard(&path);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        collect_targets(&d, &file, &mut out);
        for var in d
            .pointer("/templating/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if var["type"] != "query" {
                continue;
            }
            let q = var["query"]
                .get("query")
                .or(Some(&var["query"]))
                .and_then(Value::as_str)
                .unwrap_or("");
            let origin = format!("{file}: variable {}", var["name"]);
            let lv = q
                .trim()
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|r| r.rsplit_once(','))
                .map(|(m, l)| (m.trim().to_string(), l.trim().to_string()));
            out.push(Query {
                origin,
                expr: lv.as_ref().map(|(m, _)| m.clone()).unwrap_or(q.to_string()),
                label_values: lv,
            });
        }
    }
    out
}

fn collect_targets(v: &Value, file: &str, out: &mut Vec<Query>) {
    match v {
        Value::Object(map) => {
            if let (Some(Value::Array(targets)), Some(title)) =
                (map.get("targets"), map.get("title"))
            {
                for t in targets {
                    if let Some(expr) = t.get("expr").and_then(Value::as_str) {
                        out.push(Query {
                            origin: format!("{file}: panel {title} ({})", t["refId"]),
                            expr: expr.to_string(),
                            label_values: None,
                        });
                    }
                }
            }
            for (k, child) in map {
                if k != "targets" {
                    collect_targets(child, file, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_targets(i, file, out)),
        _ => {}
    }
}

fn alert_rules(path: &Path) -> Vec<Value> {
    let doc = yaml(path);
    arr(&doc, "/groups")
        .iter()
        .flat_map(|g| arr(g, "/rules").clone())
        .collect()
}

fn alert_queries() -> Vec<Query> {
    alert_rules(&deploy_dir().join("prometheus/alerts.yml"))
        .iter()
        .map(|r| Query {
            origin: format!("alerts.yml: {}", r["alert"]),
            expr: str_at(r, "/expr").to_string(),
            label_values: None,
        })
        .collect()
}

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

// ---------------------------------------------------------------------------------------
// systemd

fn unit_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('[')
        })
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    if !require(
        "systemd_unit_verifies_and_is_hardened",
        &["systemd-analyze"],
    ) {
        return;
    }
    let unit_path = deploy_dir().join("systemd/dicomtap.service");
    let text = read(&unit_path);
    let directives = unit_directives(&text);
    let get = |k: &str| -> Vec<&str> {
        directives
            .iter()
            .filter(|(d, _)| d == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for (key, want) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("ReadWritePaths", "/var/lib/dicomtap"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("SystemCallFilter", "@system-service"),
        ("User", "dicomtap"),
    ] {
        assert!(
            get(key).contains(&want),
            "{}: expected {key}={want}",
            unit_path.display()
        );
    }
    assert!(
        get("RestrictAddressFamilies")
            .first()
            .is_some_and(|v| v.contains("AF_INET") && v.contains("AF_INET6")),
        "RestrictAddressFamilies with AF_INET and AF_INET6"
    );
    let handles_hup = read(&workspace_dir().join("src/cmd/proxy.rs")).contains("hangup()");
    assert_eq!(
        !get("ExecReload").is_empty(),
        handles_hup,
        "ExecReload (SIGHUP) only when the proxy handles SIGHUP, which it {}",
        if handles_hup { "does" } else { "does not" }
    );
    let exec = get("ExecStart");
    let [exec] = exec.as_slice() else {
        panic!("one ExecStart");
    };
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/dicomtap");
    assert_eq!(argv[1], "proxy");

    // systemd-analyze verify needs the executable: a copy of the unit that runs the
    // freshly built binary, otherwise byte for byte the same.
    let tmp = temp_dir("deploy-systemd");
    let copy = tmp.path().join("dicomtap.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/dicomtap ", &format!("{DICOMTAP} ")),
    )
    .unwrap();
    let (ok, out) = run(
        "systemd-analyze-verify",
        cmd("systemd-analyze", &["verify", copy.to_str().unwrap()]),
        tmp.path(),
    );
    assert!(ok, "systemd-analyze verify failed:\n{out}");
    assert!(
        !out.contains("dicomtap.service:"),
        "systemd-analyze verify warns about the unit:\n{out}"
    );
    let (ok, out) = run(
        "systemd-analyze-security",
        cmd(
            "systemd-analyze",
            &[
                "security",
                "--offline=true",
                "--threshold=20",
                "--no-pager",
                copy.to_str().unwrap(),
            ],
        ),
        tmp.path(),
    );
    assert!(ok, "exposure above 2.0 (systemd-analyze security):\n{out}");

    // The ExecStart flags are the real ones: run them, with the example configuration
    // for /etc/dicomtap/dicomtap.toml, a temporary directory for /var/lib/dicomtap and
    // loopback ports.
    let rec = tmp.path().join("rec");
    let mut args: Vec<String> = argv[2..]
        .iter()
        .map(|a| match *a {
            "/etc/dicomtap/dicomtap.toml" => deploy_dir()
                .join("systemd/dicomtap.toml")
                .display()
                .to_string(),
            "/var/lib/dicomtap" => rec.display().to_string(),
            other => other.to_string(),
        })
        .collect();
    args.extend(loopback_overrides());
    let proxy = Proxy::start("proxy-systemd", &args, tmp.path());
    let recording = format!("recording to {}", rec.display());
    assert!(
        support::wait_until(Duration::from_secs(10), || proxy
            .proc
            .stdout()
            .contains(&recording)),
        "{}",
        proxy.proc.output()
    );
}

// ---------------------------------------------------------------------------------------
// Configuration files

/// Flags that keep a configuration's own addresses from being bound by a test.
fn loopback_overrides() -> Vec<String> {
    vec![
        "--listen".into(),
        format!("127.0.0.1:{}", free_port()),
        "--upstream".into(),
        format!("127.0.0.1:{}", free_port()),
        "--metrics".into(),
        format!("127.0.0.1:{}", free_port()),
    ]
}

fn configmap_data() -> BTreeMap<String, BTreeMap<String, String>> {
    yaml_docs(&deploy_dir().join("kubernetes/configmap.yaml"))
        .into_iter()
        .map(|d| {
            let name = str_at(&d, "/metadata/name").to_string();
            let data = d["data"]
                .as_object()
                .expect("ConfigMap data")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (name, data)
        })
        .collect()
}

#[test]
fn every_configuration_is_accepted_by_the_proxy() {
    let tmp = temp_dir("deploy-configs");
    let cm = configmap_data();
    let k8s_config = tmp.path().join("k8s-dicomtap.toml");
    std::fs::write(&k8s_config, &cm["dicomtap-config"]["dicomtap.toml"]).unwrap();
    for (name, file) in [
        ("image", deploy_dir().join("dicomtap.toml")),
        ("compose", deploy_dir().join("compose/dicomtap.toml")),
        ("systemd", deploy_dir().join("systemd/dicomtap.toml")),
        ("kubernetes", k8s_config),
    ] {
        let rec = tmp.path().join(format!("rec-{name}"));
        let mut args = vec![
            "--config".to_string(),
            file.display().to_string(),
            "--record".into(),
            rec.display().to_string(),
        ];
        args.extend(loopback_overrides());
        let proxy = Proxy::start(&format!("proxy-{name}"), &args, tmp.path());
        drop(proxy);
        assert!(rec.is_dir(), "{name}: no recording directory");
    }
    // The device statements of the ConfigMap are valid.
    let dir = tmp.path().join("statements");
    std::fs::create_dir(&dir).unwrap();
    let statements = &cm["dicomtap-statements"];
    assert!(!statements.is_empty());
    for (key, text) in statements {
        assert!(
            key.ends_with(".toml"),
            "statement keys are file names: {key}"
        );
        std::fs::write(dir.join(key), text).unwrap();
    }
    let mut check = Command::new(DICOMTAP);
    check.args(["statement", "check", dir.to_str().unwrap()]);
    let (ok, out) = run("statement-check", check, tmp.path());
    assert!(ok, "the ConfigMap's statements are invalid:\n{out}");
}

// ---------------------------------------------------------------------------------------
// Kubernetes

fn matches_labels(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .expect("matchLabels")
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn parse_quantity(q: &str) -> u64 {
    let (num, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = num.parse().expect("a storage quantity");
    n * match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "" => 1,
        other => panic!("unexpected storage unit {other}"),
    }
}

#[test]
fn kubernetes_manifests_parse_and_fit_together() {
    let dir = deploy_dir().join("kubernetes");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let mut listed: Vec<String> = arr(&kustomization, "/resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");

    let mut objects: BTreeMap<(String, String), Value> = BTreeMap::new();
    for file in &present {
        for doc in yaml_docs(&dir.join(file)) {
            let kind = str_at(&doc, "/kind").to_string();
            let name = str_at(&doc, "/metadata/name").to_string();
            assert!(
                doc["apiVersion"].is_string(),
                "{file}: {kind} without apiVersion"
            );
            if kind != "Namespace" {
                assert_eq!(
                    doc.pointer("/metadata/namespace").and_then(Value::as_str),
                    Some("dicomtap"),
                    "{file}: {kind}/{name} in namespace dicomtap"
                );
            }
            assert!(
                objects.insert((kind.clone(), name.clone()), doc).is_none(),
                "{kind}/{name} twice"
            );
        }
    }
    let kinds: BTreeSet<&str> = objects.keys().map(|(k, _)| k.as_str()).collect();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "ServiceMonitor",
        "NetworkPolicy",
        "PrometheusRule",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/kubernetes");
    }
    let get = |kind: &str, name: &str| -> &Value {
        objects
            .get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
    };
    let ns = get("Namespace", "dicomtap");
    assert_eq!(
        ns.pointer("/metadata/labels/pod-security.kubernetes.io~1enforce"),
        Some(&json!("restricted"))
    );

    // The Deployment.
    let deployment = get("Deployment", "dicomtap");
    assert_eq!(str_at(deployment, "/apiVersion"), "apps/v1");
    let pod = &deployment["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    assert!(matches_labels(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    let pod_sc = &pod["spec"]["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], json!(true));
    assert_ne!(pod_sc["runAsUser"], json!(0));
    assert_eq!(pod_sc["seccompProfile"]["type"], json!("RuntimeDefault"));
    let containers = arr(pod, "/spec/containers");
    let [c] = containers.as_slice() else {
        panic!("one container");
    };
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], json!(true));
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false));
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let args: Vec<&str> = arr(c, "/args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "proxy");
    let flag = |f: &str| {
        args.iter()
            .position(|a| *a == f)
            .and_then(|i| args.get(i + 1).copied())
    };
    assert_eq!(
        flag("--metrics"),
        Some("0.0.0.0:9464"),
        "the proxy binds metrics to 127.0.0.1 by default: probes and Prometheus need 0.0.0.0:9464"
    );
    let config_path = flag("--config").expect("--config");
    let ports: BTreeMap<&str, i64> = arr(c, "/ports")
        .iter()
        .map(|p| (str_at(p, "/name"), p["containerPort"].as_i64().unwrap()))
        .collect();
    assert_eq!(ports.get("metrics"), Some(&9464));
    for probe in ["livenessProbe", "readinessProbe"] {
        let http = &c[probe]["httpGet"];
        assert_eq!(http["path"], json!("/healthz"), "{probe}");
        let port = http["port"].as_str().unwrap_or("");
        assert_eq!(ports.get(port), Some(&9464), "{probe} on the metrics port");
    }
    // Mounts: configuration, statements, recordings.
    let volumes: BTreeMap<&str, &Value> = arr(pod, "/spec/volumes")
        .iter()
        .map(|v| (str_at(v, "/name"), v))
        .collect();
    let mounts: BTreeMap<&str, &str> = arr(c, "/volumeMounts")
        .iter()
        .map(|m| (str_at(m, "/mountPath"), str_at(m, "/name")))
        .collect();
    let cm = configmap_data();
    let config_volume = volumes[mounts[config_path]];
    let cm_name = str_at(config_volume, "/configMap/name");
    let config_key = config_path.rsplit('/').next().unwrap();
    let config = toml_value(
        cm.get(cm_name)
            .and_then(|d| d.get(config_key))
            .unwrap_or_else(|| panic!("ConfigMap {cm_name} has no {config_key}")),
        "the ConfigMap's dicomtap.toml",
    );
    let rec_dir = str_at(&config, "/recording/dir");
    let rec_volume = volumes[mounts
        .get(rec_dir)
        .expect("the recording directory is mounted")];
    let claim = str_at(rec_volume, "/persistentVolumeClaim/claimName");
    let pvc = get("PersistentVolumeClaim", claim);
    assert!(
        mounts
            .iter()
            .any(|(_, v)| volumes[v].pointer("/configMap/name")
                == Some(&json!("dicomtap-statements"))),
        "the statements ConfigMap is mounted"
    );
    for v in volumes.values() {
        if let Some(name) = v.pointer("/configMap/name").and_then(Value::as_str) {
            get("ConfigMap", name);
        }
    }
    // The claim holds what retention keeps, plus the pair being written.
    let kept = config["recording"]["rotate_bytes"].as_u64().unwrap()
        * (config["recording"]["keep_files"].as_u64().unwrap() + 1);
    let size = parse_quantity(str_at(pvc, "/spec/resources/requests/storage"));
    assert!(
        size >= kept,
        "PVC {claim} ({size} bytes) smaller than rotate_bytes x (keep_files + 1) = {kept}"
    );
    let listen = str_at(&config, "/listener/0/listen");
    let listen_port: i64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        ports.get("dicom"),
        Some(&listen_port),
        "container port = listener"
    );

    // Services select the pod, their target ports are the container's.
    let services: Vec<&Value> = objects
        .iter()
        .filter(|((k, _), _)| k == "Service")
        .map(|(_, v)| v)
        .collect();
    assert!(services.len() >= 2, "a DICOM and a metrics Service");
    for s in &services {
        assert!(matches_labels(&s["spec"]["selector"], pod_labels));
        for p in arr(s, "/spec/ports") {
            let target = p["targetPort"].as_str().expect("named target ports");
            assert!(ports.contains_key(target), "Service port {target}");
        }
    }
    assert!(
        services.iter().any(|s| arr(s, "/spec/ports")
            .iter()
            .any(|p| p["port"] == json!(104) && p["targetPort"] == json!("dicom"))),
        "a Service offers DICOM on port 104"
    );
    // The ServiceMonitor finds the metrics Service and its port.
    let sm = get("ServiceMonitor", "dicomtap");
    assert_eq!(str_at(sm, "/apiVersion"), "monitoring.coreos.com/v1");
    let selected: Vec<&&Value> = services
        .iter()
        .filter(|s| {
            matches_labels(
                &sm["spec"]["selector"]["matchLabels"],
                &s["metadata"]["labels"],
            )
        })
        .collect();
    assert_eq!(selected.len(), 1, "the ServiceMonitor selects one Service");
    let endpoint_port = str_at(sm, "/spec/endpoints/0/port");
    assert!(
        arr(selected[0], "/spec/ports")
            .iter()
            .any(|p| p["name"] == json!(endpoint_port) && p["targetPort"] == json!("metrics")),
        "ServiceMonitor port {endpoint_port} is the metrics port"
    );
    assert_eq!(str_at(sm, "/spec/endpoints/0/path"), "/metrics");
    let job_label = str_at(sm, "/spec/jobLabel");
    assert_eq!(
        selected[0]["metadata"]["labels"][job_label],
        json!("dicomtap"),
        "job=\"dicomtap\" as the alerts expect"
    );
    // The NetworkPolicy applies to the pod and admits its ports.
    let np = get("NetworkPolicy", "dicomtap");
    assert!(matches_labels(
        &np["spec"]["podSelector"]["matchLabels"],
        pod_labels
    ));
    let admitted: BTreeSet<&str> = arr(np, "/spec/ingress")
        .iter()
        .flat_map(|r| arr(r, "/ports").iter().map(|p| str_at(p, "/port")))
        .collect();
    assert!(admitted.contains("dicom") && admitted.contains("metrics"));
}

// ---------------------------------------------------------------------------------------
// Compose

#[test]
fn compose_file_parses_and_fits_together() {
    let dir = deploy_dir().join("compose");
    let compose = yaml(&dir.join("compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    for s in ["dicomtap", "orthanc", "prometheus", "grafana"] {
        assert!(services.contains_key(s), "compose service {s}");
    }
    let orthanc_image = str_at(&compose, "/services/orthanc/image");
    assert!(
        orthanc_image.starts_with("orthancteam/orthanc:")
            || orthanc_image.starts_with("jodogne/orthanc"),
        "{orthanc_image}"
    );
    // Build from the repository root with deploy/Dockerfile.
    let d = &compose["services"]["dicomtap"];
    let context = dir.join(str_at(d, "/build/context"));
    assert!(
        context.join(str_at(d, "/build/dockerfile")).is_file(),
        "the build context and Dockerfile exist"
    );
    assert_eq!(d["read_only"], json!(true));
    assert_eq!(d["cap_drop"], json!(["ALL"]));
    assert!(!str_at(d, "/user").starts_with('0'));
    // Bind mounts point at files of the repository.
    for (name, s) in services {
        for v in s
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let spec = v.as_str().unwrap();
            let source = spec.split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    dir.join(source).exists(),
                    "{name}: mount source {source} does not exist"
                );
            } else {
                assert!(
                    compose["volumes"].get(source).is_some(),
                    "{name}: volume {source} is not declared"
                );
            }
        }
    }
    // The configuration the proxy gets: metrics on 0.0.0.0:9464, the listener on the
    // published container port, the upstream the orthanc service.
    let mounted = d["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .find(|v| v.contains(":/etc/dicomtap/dicomtap.toml"))
        .expect("a dicomtap.toml mounted at /etc/dicomtap/dicomtap.toml");
    let config = toml_value(
        &read(&dir.join(mounted.split(':').next().unwrap())),
        "compose/dicomtap.toml",
    );
    assert_eq!(str_at(&config, "/metrics_listen"), "0.0.0.0:9464");
    let listen = str_at(&config, "/listener/0/listen");
    let container_port = listen.rsplit(':').next().unwrap();
    let published: Vec<&str> = arr(d, "/ports")
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        published
            .iter()
            .any(|p| p.ends_with(&format!(":{container_port}"))),
        "{published:?} publishes {container_port}"
    );
    assert!(published.iter().any(|p| p.ends_with(":9464")));
    let upstream = str_at(&config, "/listener/0/upstream");
    assert!(services.contains_key(upstream.split(':').next().unwrap()));
    assert_eq!(str_at(&config, "/recording/dir"), "/var/lib/dicomtap");

    // Grafana provisioning files parse.
    let grafana = deploy_dir().join("grafana/provisioning");
    let ds = yaml(&grafana.join("datasources/dicomtap.yaml"));
    assert_eq!(str_at(&ds, "/datasources/0/type"), "prometheus");
    let dashboards = yaml(&grafana.join("dashboards/dicomtap.yaml"));
    let path = str_at(&dashboards, "/providers/0/options/path");
    assert!(
        compose["services"]["grafana"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().contains(&format!(":{path}"))),
        "the dashboards are mounted where the provider reads them ({path})"
    );
}

// ---------------------------------------------------------------------------------------
// Dockerfile

#[test]
fn dockerfile_is_multi_stage_and_non_root() {
    let path = deploy_dir().join("Dockerfile");
    let text = read(&path);
    // Instructions, with continuation lines joined and comments dropped.
    let mut instructions: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        let (op, rest) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        instructions.push((op.to_uppercase(), rest.trim().to_string()));
        pending.clear();
    }
    let froms: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let first = &instructions[froms[0]].1;
    assert!(
        first.starts_with("rust:") || first.starts_with("docker.io/library/rust:"),
        "the build stage uses the official Rust image: {first}"
    );
    let last_from = *froms.last().unwrap();
    let runtime = &instructions[last_from].1;
    assert!(
        runtime.contains("distroless/cc") || runtime.contains("-slim"),
        "small runtime image: {runtime}"
    );
    let last_stage = &instructions[last_from + 1..];
    let user = last_stage
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, v)| v.as_str())
        .expect("a USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(
        !matches!(uid, "0" | "root"),
        "the runtime user is not root: {user}"
    );
    assert!(
        last_stage.iter().all(|(op, _)| op != "RUN"),
        "no RUN in the runtime stage: it needs no shell"
    );
    for op in ["ENTRYPOINT", "CMD"] {
        let (_, v) = last_stage
            .iter()
            .find(|(o, _)| o == op)
            .unwrap_or_else(|| panic!("{op} in the runtime stage"));
        let argv: Vec<String> =
            serde_json::from_str(v).unwrap_or_else(|_| panic!("{op} in exec (JSON) form: {v}"));
        assert!(!argv.is_empty());
    }
    let healthcheck = last_stage
        .iter()
        .find(|(o, _)| o == "HEALTHCHECK")
        .map(|(_, v)| v.as_str())
        .expect("a HEALTHCHECK instruction (NONE, documented, or exec form)");
    assert!(
        healthcheck == "NONE" || healthcheck.contains("CMD ["),
        "HEALTHCHECK without a shell: {healthcheck}"
    );
    let exposed: BTreeSet<&str> = last_stage
        .iter()
        .filter(|(o, _)| o == "EXPOSE")
        .flat_map(|(_, v)| v.split_whitespace())
        .map(|p| p.trim_end_matches("/tcp"))
        .collect();
    assert!(exposed.contains("9464"), "EXPOSE 9464: {exposed:?}");
    assert!(
        exposed.contains("104") || exposed.contains("11112"),
        "EXPOSE the DICOM port: {exposed:?}"
    );
    // Files copied from the context exist; the configuration lands where CMD reads it.
    let mut config_dest = None;
    for (_, v) in last_stage.iter().filter(|(o, _)| o == "COPY") {
        if v.contains("--from=") {
            continue;
        }
        let parts: Vec<&str> = v
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        let (dest, sources) = parts.split_last().unwrap();
        for s in sources {
            assert!(
                workspace_dir().join(s).exists(),
                "COPY source {s} is missing"
            );
        }
        if dest.ends_with("dicomtap.toml") {
            config_dest = Some(*dest);
        }
    }
    assert_eq!(config_dest, Some("/etc/dicomtap/dicomtap.toml"));
    assert!(
        text.contains("/var/lib/dicomtap"),
        "recordings at /var/lib/dicomtap"
    );
    let cmd = &last_stage.iter().find(|(o, _)| o == "CMD").unwrap().1;
    assert!(cmd.contains("/etc/dicomtap/dicomtap.toml"));
    let ignore = read(&deploy_dir().join("Dockerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target"));
}

// ---------------------------------------------------------------------------------------
// Unit tests of the helpers above

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
