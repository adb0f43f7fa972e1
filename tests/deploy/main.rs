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

#[path = "../support/mod.rs"]
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

mod compose;
mod dockerfile;
mod grafana;
mod kubernetes;
mod prometheus;
mod systemd;
