//! Proxy configuration: listeners, routes, limits, recording and metrics, read from a TOML
//! file (and overridden by command-line flags in `dicomtap proxy`).
//!
//! Validation happens while deserializing, so every error carries the span of the value
//! that caused it; [`ProxyConfig::from_toml_str`] turns that span into a line and column
//! and names the key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Default address of the metrics endpoint: loopback only.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// The whole proxy configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// `[[listener]]` tables: one per listening socket.
    #[serde(rename = "listener", alias = "listeners", default)]
    pub listeners: Vec<ListenerConfig>,
    /// Where `/metrics` and `/healthz` are served; `"off"` disables the endpoint.
    /// Default `127.0.0.1:9464` (loopback only).
    #[serde(
        default = "default_metrics_listen",
        deserialize_with = "de_optional_addr"
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// Recording to pcapng + JSON lines; absent means no recording.
    #[serde(default)]
    pub recording: Option<RecordingConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Bearer token required on `/metrics` and `/healthz` (401 without it); see
    /// docs/access-control.md. Prefer `metrics_token_file`.
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// File holding the bearer token (surrounding whitespace ignored).
    #[serde(default)]
    pub metrics_token_file: Option<PathBuf>,
    /// `[metrics_tls]`: serve the metrics endpoint over TLS only, with a client
    /// certificate required when `client_ca` is set (docs/tls.md). Reloaded on SIGHUP.
    #[serde(default)]
    pub metrics_tls: Option<crate::tls::ServerTlsConfig>,
    /// Directory of device statements: the conformance rules run live on the traffic.
    #[serde(default)]
    pub statements: Option<std::path::PathBuf>,
    /// `[identity]`: the site and instance name, labels on every metric and part of every
    /// fleet event (docs/fleet.md).
    #[serde(default)]
    pub identity: IdentityConfig,
    /// `[fleet]`: publishing events to the fleet bus; read by `dicomtap proxy`
    /// (docs/fleet.md).
    #[serde(default)]
    pub fleet: Option<toml::Table>,
    /// Every event the event log gets, also handed to this queue (the fleet publisher's
    /// way in). The analysis of an association waits for room, as it waits for the
    /// recorder; forwarding never does. Set by the program, not by the file.
    #[serde(skip)]
    pub event_tap: Option<EventTap>,
}

/// The queue behind [`ProxyConfig::event_tap`].
pub type EventTap = tokio::sync::mpsc::Sender<crate::events::ProxyEvent>;

/// `[identity]` (docs/fleet.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub site: Option<String>,
    pub instance: Option<String>,
}

impl IdentityConfig {
    /// The metric labels, when a site is set (the instance name defaults to the host's).
    pub fn labels(&self) -> Vec<(String, String)> {
        match &self.site {
            Some(site) => vec![
                ("site".to_string(), site.clone()),
                (
                    "instance_name".to_string(),
                    self.instance.clone().unwrap_or_else(host_name),
                ),
            ],
            None => Vec::new(),
        }
    }
}

/// The host's name (from /proc or /etc/hostname), reduced to `[A-Za-z0-9_-]`, for a
/// default instance name.
pub fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "dicomtap".to_string()
    } else {
        name
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listeners: Vec::new(),
            metrics_listen: Some(DEFAULT_METRICS_LISTEN),
            recording: None,
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            metrics_token: None,
            metrics_token_file: None,
            metrics_tls: None,
            statements: None,
            identity: IdentityConfig::default(),
            fleet: None,
            event_tap: None,
        }
    }
}

fn default_metrics_listen() -> Option<SocketAddr> {
    Some(DEFAULT_METRICS_LISTEN)
}

/// One listening socket and where its connections go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawListener")]
pub struct ListenerConfig {
    /// Optional name, used in logs.
    pub name: Option<String>,
    /// Address to listen on; port 0 lets the OS choose.
    pub listen: SocketAddr,
    /// Default upstream, `host:port` (a name is resolved at each connection). Required
    /// unless `transparent` is set.
    pub upstream: Option<String>,
    /// Routes by called AE title, tried in order before the default upstream.
    pub routes: Vec<Route>,
    /// Interception mode: the upstream is each connection's original destination
    /// (SO_ORIGINAL_DST), as set by a firewall REDIRECT rule.
    pub transparent: bool,
    /// `[listener.tls]`: terminate TLS from the devices (docs/tls.md).
    pub tls: Option<crate::tls::ServerTlsConfig>,
    /// `[listener.upstream_tls]`: originate TLS to the upstream (docs/tls.md).
    pub upstream_tls: Option<crate::tls::ClientTlsConfig>,
    /// `[listener.access]`: allow/deny lists (docs/access-control.md).
    pub access: Option<crate::access::AccessConfig>,
}

impl ListenerConfig {
    /// A plain listener forwarding everything to `upstream`.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        ListenerConfig {
            name: None,
            listen,
            upstream: Some(upstream.to_string()),
            routes: Vec::new(),
            transparent: false,
            tls: None,
            upstream_tls: None,
            access: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    name: Option<String>,
    listen: SocketAddr,
    upstream: Option<String>,
    #[serde(default, rename = "route", alias = "routes")]
    routes: Vec<Route>,
    #[serde(default)]
    transparent: bool,
    tls: Option<crate::tls::ServerTlsConfig>,
    upstream_tls: Option<crate::tls::ClientTlsConfig>,
    access: Option<crate::access::AccessConfig>,
}

impl TryFrom<RawListener> for ListenerConfig {
    type Error = String;
    fn try_from(raw: RawListener) -> Result<Self, String> {
        if let Some(up) = &raw.upstream {
            check_host_port(up).map_err(|e| format!("upstream: {e}"))?;
        }
        if raw.upstream.is_none() && !raw.transparent {
            return Err(format!(
                "listener {} has no `upstream` (required unless `transparent = true`)",
                raw.listen
            ));
        }
        if raw.transparent && !raw.routes.is_empty() {
            return Err("`route` cannot be combined with `transparent = true`".into());
        }
        Ok(ListenerConfig {
            name: raw.name,
            listen: raw.listen,
            upstream: raw.upstream,
            routes: raw.routes,
            transparent: raw.transparent,
            tls: raw.tls,
            upstream_tls: raw.upstream_tls,
            access: raw.access,
        })
    }
}

/// Route associations whose called AE title is `called_ae` to `upstream`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawRoute")]
pub struct Route {
    /// Called AE title, compared after trimming spaces (case-sensitive, as DICOM says).
    pub called_ae: String,
    /// `host:port`.
    pub upstream: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    called_ae: String,
    upstream: String,
}

impl TryFrom<RawRoute> for Route {
    type Error = String;
    fn try_from(raw: RawRoute) -> Result<Self, String> {
        let ae = raw.called_ae.trim_matches(' ').to_string();
        if ae.is_empty() || ae.len() > 16 {
            return Err(format!(
                "called_ae {:?} must be 1 to 16 characters",
                raw.called_ae
            ));
        }
        check_host_port(&raw.upstream).map_err(|e| format!("upstream: {e}"))?;
        Ok(Route {
            called_ae: ae,
            upstream: raw.upstream,
        })
    }
}

fn check_host_port(s: &str) -> Result<(), String> {
    if let Ok(a) = s.parse::<SocketAddr>()
        && a.port() != 0
    {
        return Ok(());
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!(
            "\"{s}\" is not host:port (a host name or address and a port from 1 to 65535)"
        )),
    }
}

/// What of each association's bytes the recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PayloadMode {
    /// Every byte.
    #[default]
    Full,
    /// PDU and PDV headers, association PDUs, command sets and the first
    /// `headers_keep_bytes` of each data set; the rest is a hole in the sequence space.
    Headers,
    /// No capture file, only the event log.
    None,
}

impl std::str::FromStr for PayloadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(PayloadMode::Full),
            "headers" => Ok(PayloadMode::Headers),
            "none" => Ok(PayloadMode::None),
            other => Err(format!(
                "unknown payload mode {other:?} (expected full, headers or none)"
            )),
        }
    }
}

/// The recorder: pcapng + JSON-lines event log in `dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Directory of the files; created (mode 0700) if missing.
    pub dir: PathBuf,
    #[serde(default)]
    pub payload: PayloadMode,
    /// Start a new file pair when the capture reaches this size. Default 256 MiB.
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: u64,
    /// Start a new file pair after this many seconds. Default 3600.
    #[serde(default = "default_rotate_seconds")]
    pub rotate_seconds: u64,
    /// Keep at most this many file pairs; older ones are deleted. 0 keeps everything.
    /// Default 48.
    #[serde(default = "default_keep_files")]
    pub keep_files: usize,
    /// Record both legs (client<->proxy, proxy<->upstream) instead of the single
    /// client<->upstream conversation.
    #[serde(default)]
    pub both_legs: bool,
    /// When the recorder's queue is full, forwarding waits for room at most this long
    /// per chunk, milliseconds; then the chunk is dropped from the recording and counted
    /// (`dicomtap_recorder_dropped_total`, `dicomtap_recorder_dropped_bytes_total`). `0`
    /// never waits. Default 250: a short burst is recorded whole, a stalled disk cannot
    /// hold forwarding up for longer than that per chunk.
    #[serde(default = "default_record_wait_ms")]
    pub record_wait_ms: u64,
    /// When the disk cannot keep up: `true` slows forwarding down for as long as it
    /// takes (`record_wait_ms` no longer applies), so nothing is dropped. Default `false`.
    #[serde(default)]
    pub backpressure: bool,
    /// Write the capture with direct I/O (`O_DIRECT`), bypassing the page cache: no
    /// kernel copy and no captured patient data kept in memory, but every write waits
    /// for the disk (the page cache takes over while the disk is behind). For a local
    /// disk much faster than the traffic. Falls back to the page cache where the file
    /// system refuses it. Default `false`.
    #[serde(default = "default_direct_io")]
    pub direct_io: bool,
    /// Chunks queued to the recorder before dropping or backpressure. Default 4096.
    #[serde(default = "default_queue_chunks")]
    pub queue_chunks: usize,
    /// How often buffered blocks are written out, milliseconds. Default 200.
    #[serde(default = "default_flush_ms")]
    pub flush_interval_ms: u64,
    /// In `headers` mode, how many bytes at the start of each data set are kept.
    /// Default 4096.
    #[serde(default = "default_headers_keep")]
    pub headers_keep_bytes: u32,
}

impl RecordingConfig {
    /// Recording into `dir` with every default.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecordingConfig {
            dir: dir.into(),
            payload: PayloadMode::Full,
            rotate_bytes: default_rotate_bytes(),
            rotate_seconds: default_rotate_seconds(),
            keep_files: default_keep_files(),
            both_legs: false,
            record_wait_ms: default_record_wait_ms(),
            backpressure: false,
            direct_io: default_direct_io(),
            queue_chunks: default_queue_chunks(),
            flush_interval_ms: default_flush_ms(),
            headers_keep_bytes: default_headers_keep(),
        }
    }
}

fn default_rotate_bytes() -> u64 {
    256 << 20
}
fn default_rotate_seconds() -> u64 {
    3600
}
fn default_keep_files() -> usize {
    48
}
fn default_direct_io() -> bool {
    false
}
fn default_record_wait_ms() -> u64 {
    250
}
fn default_queue_chunks() -> usize {
    4096
}
fn default_flush_ms() -> u64 {
    200
}
fn default_headers_keep() -> u32 {
    4096
}

/// Caps and timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Concurrent associations; beyond it a client gets A-ASSOCIATE-RJ
    /// (local-limit-exceeded). Default 256.
    #[serde(default = "default_max_associations")]
    pub max_associations: usize,
    /// Upstream connect timeout, e.g. `"10s"`. Default 10 s.
    #[serde(default = "default_connect_timeout", deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
    /// The association-request timer (PS3.8 ARTIM): the client's first PDU (its
    /// A-ASSOCIATE-RQ) must have arrived whole this long after the connection was
    /// accepted, however slowly it trickles, or the connection is closed. Applies in
    /// every mode, plain forwarding included. Default 30 s.
    #[serde(default = "default_rq_timeout", deserialize_with = "de_duration")]
    pub associate_rq_timeout: Duration,
    /// Close an association after this long without a byte either way; `"0s"` means
    /// never. Default 15 minutes.
    #[serde(
        default = "default_idle_timeout",
        deserialize_with = "de_optional_duration"
    )]
    pub idle_timeout: Option<Duration>,
    /// Concurrent associations from one source address; beyond it the client gets
    /// A-ASSOCIATE-RJ (transient, local-limit-exceeded). 0: no per-source limit. Absent:
    /// half of `max_associations` (rounded up).
    #[serde(default)]
    pub max_associations_per_source: Option<usize>,
    /// Largest A-ASSOCIATE-RQ read for routing; larger ones go to the default upstream
    /// unread. Default 1 MiB.
    #[serde(default = "default_max_rq")]
    pub max_associate_rq_bytes: u32,
    /// Read buffer per direction. Default 64 KiB.
    #[serde(default = "default_read_buffer")]
    pub read_buffer_bytes: usize,
    /// Chunks queued to each association's analysis before the engine is told of a gap.
    /// Default 256.
    #[serde(default = "default_analysis_queue")]
    pub analysis_queue_chunks: usize,
}

impl Limits {
    /// The per-source cap in force: `None` when there is none.
    pub fn per_source_limit(&self) -> Option<usize> {
        match self.max_associations_per_source {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(self.max_associations.div_ceil(2).max(1)),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_associations: default_max_associations(),
            connect_timeout: default_connect_timeout(),
            associate_rq_timeout: default_rq_timeout(),
            idle_timeout: default_idle_timeout(),
            max_associations_per_source: None,
            max_associate_rq_bytes: default_max_rq(),
            read_buffer_bytes: default_read_buffer(),
            analysis_queue_chunks: default_analysis_queue(),
        }
    }
}

fn default_max_associations() -> usize {
    256
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_rq_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Option<Duration> {
    Some(Duration::from_secs(15 * 60))
}
fn default_max_rq() -> u32 {
    1 << 20
}
fn default_read_buffer() -> usize {
    64 * 1024
}
fn default_analysis_queue() -> usize {
    256
}

/// Label cardinality caps of the metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Distinct AE titles per label before the rest are counted as `other`. Default 32.
    #[serde(default = "default_ae_cap")]
    pub ae_title_cap: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            ae_title_cap: default_ae_cap(),
        }
    }
}

fn default_ae_cap() -> usize {
    32
}

/// A duration: an integer number of seconds, or a string with a unit (`"250ms"`, `"10s"`,
/// `"5m"`, `"1h"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"10s\""))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?}")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Int(u64),
    Str(String),
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match RawDuration::deserialize(d)? {
        RawDuration::Int(n) => Ok(Duration::from_secs(n)),
        RawDuration::Str(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

fn de_optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let v = de_duration(d)?;
    Ok(if v.is_zero() { None } else { Some(v) })
}

fn de_optional_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_optional_addr(&s).map_err(serde::de::Error::custom)
}

/// `"off"`/`"none"`/`""` or a socket address.
pub fn parse_optional_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    match s.trim() {
        "" | "off" | "none" => Ok(None),
        other => other
            .parse()
            .map(Some)
            .map_err(|_| format!("{other:?} is not an address like 127.0.0.1:9464 (or \"off\")")),
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {}{message}", key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ProxyConfig {
    /// Reads and validates a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates TOML text; `path` is only used in error messages.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<ProxyConfig, ConfigError> {
        let config: ProxyConfig = toml::from_str(text).map_err(|e| {
            let (line, column, key) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (l, c, key_at(text, span.start, e.message()))
                }
                None => (0, 0, None),
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Checks what can only be checked across tables (the command line calls this after
    /// applying its flags).
    pub fn validate(&self) -> Result<(), String> {
        if self.listeners.is_empty() {
            return Err(
                "no listener configured (add a [[listener]] table or --listen/--upstream)".into(),
            );
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.upstream.is_none() && !l.transparent {
                return Err(format!("listener[{i}] ({}) has no upstream", l.listen));
            }
            // The command line's --upstream and --route land here unchecked.
            if let Some(up) = &l.upstream {
                check_host_port(up)
                    .map_err(|e| format!("listener[{i}] ({}): upstream {e}", l.listen))?;
            }
            for r in &l.routes {
                check_host_port(&r.upstream).map_err(|e| {
                    format!(
                        "listener[{i}] ({}): route {}: upstream {e}",
                        l.listen, r.called_ae
                    )
                })?;
            }
        }
        for (i, a) in self.listeners.iter().enumerate() {
            for b in &self.listeners[i + 1..] {
                if a.listen == b.listen && a.listen.port() != 0 {
                    return Err(format!("two listeners on {}", a.listen));
                }
            }
        }
        if self.metrics_token.is_some() && self.metrics_token_file.is_some() {
            return Err("set `metrics_token` or `metrics_token_file`, not both".into());
        }
        if self
            .metrics_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err("`metrics_token` is empty".into());
        }
        if self.limits.max_associations == 0 {
            return Err("limits.max_associations must be at least 1".into());
        }
        if self.limits.associate_rq_timeout.is_zero() {
            return Err("limits.associate_rq_timeout must be more than 0s".into());
        }
        if self.limits.read_buffer_bytes < 1024 {
            return Err("limits.read_buffer_bytes must be at least 1024".into());
        }
        if let Some(r) = &self.recording {
            if r.queue_chunks == 0 {
                return Err("recording.queue_chunks must be at least 1".into());
            }
            if r.rotate_bytes < 4096 {
                return Err("recording.rotate_bytes must be at least 4096".into());
            }
        }
        Ok(())
    }
}

/// 1-based line and column of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|p| offset - p).unwrap_or(offset + 1);
    (line, col)
}

/// The key an error is about: from the message (``unknown field `x` ``), else the key on the
/// error's line (`key = ...`), else the table header.
fn key_at(text: &str, offset: usize, message: &str) -> Option<String> {
    if let Some(rest) = message.split("field `").nth(1)
        && let Some(k) = rest.split('`').next()
    {
        return Some(k.to_string());
    }
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map(|p| p + 1).unwrap_or(0);
    let line = text.get(start..)?.lines().next()?;
    let line = line.trim();
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        );
    }
    let (k, _) = line.split_once('=')?;
    Some(k.trim().trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ProxyConfig, ConfigError> {
        ProxyConfig::from_toml_str(s, Path::new("test.toml"))
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
metrics_listen = "127.0.0.1:9500"

[[listener]]
name = "modalities"
listen = "0.0.0.0:11112"
upstream = "pacs.example:104"

[[listener.route]]
called_ae = "ARCHIVE"
upstream = "10.0.0.5:104"

[[listener]]
listen = "127.0.0.1:0"
transparent = true

[limits]
max_associations = 10
connect_timeout = "2s"
idle_timeout = "5m"

[recording]
dir = "/var/lib/dicomtap"
payload = "headers"
keep_files = 3
"#,
        )
        .map_err(|e| e.to_string());
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[0].routes[0].called_ae, "ARCHIVE");
        assert!(c.listeners[1].transparent);
        assert_eq!(c.limits.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.limits.idle_timeout, Some(Duration::from_secs(300)));
        let r = c.recording.as_ref().map(|r| (r.payload, r.keep_files));
        assert_eq!(r, Some((PayloadMode::Headers, 3)));
        assert_eq!(c.metrics_listen, "127.0.0.1:9500".parse().ok());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = parse(
            "[[listener]]\nlisten = \"127.0.0.1:1\"\nupstream = \"127.0.0.1:2\"\nupstrem = 3\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("test.toml:"), "{e}");
        assert!(e.contains("upstrem"), "{e}");
        assert!(
            e.starts_with("test.toml:1:") || e.starts_with("test.toml:4:"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_names_line() {
        let e = parse("[limits]\nmax_associations = 5\nconnect_timeout = \"ten\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("test.toml:3:"), "{e}");
        assert!(e.contains("connect_timeout"), "{e}");
    }

    #[test]
    fn listener_without_upstream_is_refused() {
        let e = parse("[[listener]]\nlisten = \"127.0.0.1:1\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no `upstream`"), "{e}");
        assert!(e.starts_with("test.toml:1:"), "{e}");
    }

    #[test]
    fn metrics_off() {
        let c = parse(
            "metrics_listen = \"off\"\n[[listener]]\nlisten = \"127.0.0.1:1\"\nupstream = \"h:2\"\n",
        );
        assert!(matches!(
            c,
            Ok(ProxyConfig {
                metrics_listen: None,
                ..
            })
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 weeks").is_err());
    }
}
