//! Prometheus metrics of the proxy (own registry); [`http`] serves them at `/metrics`
//! (text format or [`openmetrics`]) beside `/healthz`.
//!
//! Labels are bounded: SOP classes and transfer syntaxes as registry keywords (else
//! `private` or `unknown`), AE titles capped to a configured number of distinct values
//! (then `other`), never anything from a data set.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use dicomtap_wire::event::EventKind;
use dicomtap_wire::{Event, Side};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub mod http;
pub mod openmetrics;

pub use http::{Guard, serve, serve_guarded};

/// Every metric of the proxy, registered in its own [`Registry`].
pub struct Metrics {
    registry: Registry,
    pub associations_total: IntCounterVec,
    pub associations_active: IntGauge,
    pub dimse_messages_total: IntCounterVec,
    pub dimse_response_seconds: HistogramVec,
    pub pdu_bytes: HistogramVec,
    pub bytes_total: IntCounterVec,
    pub presentation_contexts_total: IntCounterVec,
    pub upstream_errors_total: IntCounterVec,
    pub recorder_dropped_total: IntCounter,
    /// Forwarded bytes missing from the recording (queue full, wait expired, failed writes).
    pub recorder_dropped_bytes_total: IntCounter,
    /// Capture bytes written, by `io`: `direct` (O_DIRECT) or `page_cache`.
    pub recorder_written_bytes_total: IntCounterVec,
    pub analysis_dropped_bytes_total: IntCounter,
    pub protocol_findings_total: IntCounterVec,
    pub aborts_total: IntCounterVec,
    /// TLS handshakes by leg (client, upstream) and result (ok or why not; docs/tls.md).
    pub tls_handshakes_total: IntCounterVec,
    /// Associations refused by access control, by reason (docs/access-control.md).
    pub access_denied_total: IntCounterVec,
    /// Conformance findings (with `--statements`): device and rule come from the loaded
    /// statements and the rule catalogue, so the label set is bounded.
    pub conformance_findings_total: IntCounterVec,
    /// Event-log lines held back by the per-association bounds, by reason
    /// (repeated_finding, small_p_data, over_budget; docs/events.md).
    pub event_log_suppressed_total: IntCounterVec,
    /// Event-log lines written per association.
    pub event_log_lines: Histogram,
    /// Connections the proxy closed or refused to protect itself, by reason
    /// (associate_rq_timeout, idle_timeout, source_limit; docs/proxy.md).
    pub connections_shed_total: IntCounterVec,
    ae_titles: AeCap,
    /// SOP classes used as `presentation_contexts_total` labels before further ones
    /// count as `other` (a C-GET client proposes about 120 storage classes).
    sop_classes: AeCap,
}

/// Distinct SOP class labels of `dicomtap_presentation_contexts_total` before `other`.
pub const SOP_CLASS_LABEL_CAP: usize = 48;

/// Why the metrics could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("registering metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

impl Metrics {
    /// Creates and registers every metric. `ae_title_cap` bounds the AE title labels.
    pub fn new(ae_title_cap: usize) -> Result<Metrics, MetricsError> {
        Metrics::with_labels(ae_title_cap, &[])
    }

    /// As [`Metrics::new`], every metric also carrying `labels` (the instance's identity,
    /// `site` and `instance_name`: docs/fleet.md).
    pub fn with_labels(
        ae_title_cap: usize,
        labels: &[(String, String)],
    ) -> Result<Metrics, MetricsError> {
        let registry = if labels.is_empty() {
            Registry::new()
        } else {
            Registry::new_custom(None, Some(labels.iter().cloned().collect()))?
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let associations_total = counter_vec(
            "dicomtap_associations_total",
            "Associations by outcome (accepted, rejected, proxy_rejected_upstream, proxy_rejected_limit, proxy_rejected_access, tls_failed, no_response) and AE titles.",
            &["result", "calling_ae", "called_ae"],
        )?;
        let associations_active =
            IntGauge::new("dicomtap_associations_active", "Associations open now.")?;
        let dimse_messages_total = counter_vec(
            "dicomtap_dimse_messages_total",
            "DIMSE messages (requests and responses) by command, SOP class keyword and status class (none for requests).",
            &["command", "sop_class", "status_class"],
        )?;
        let dimse_response_seconds = HistogramVec::new(
            HistogramOpts::new(
                "dicomtap_dimse_response_seconds",
                "Time from a DIMSE request to its response, by response command.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0,
            ]),
            &["command"],
        )?;
        let pdu_bytes = HistogramVec::new(
            HistogramOpts::new(
                "dicomtap_pdu_bytes",
                "PDU sizes (header included) by PDU type.",
            )
            .buckets(prometheus::exponential_buckets(64.0, 4.0, 10)?),
            &["type"],
        )?;
        let bytes_total = counter_vec(
            "dicomtap_bytes_total",
            "Bytes forwarded, by direction (to_upstream, to_client).",
            &["direction"],
        )?;
        let presentation_contexts_total = counter_vec(
            "dicomtap_presentation_contexts_total",
            "Presentation context results by abstract syntax keyword, accepted transfer syntax keyword and result.",
            &["sop_class", "transfer_syntax", "result"],
        )?;
        let upstream_errors_total = counter_vec(
            "dicomtap_upstream_errors_total",
            "Upstream failures: refused, unreachable, timeout, resolve, reset, other.",
            &["kind"],
        )?;
        let recorder_dropped_total = IntCounter::new(
            "dicomtap_recorder_dropped_total",
            "Chunks and events missing from the recording: the queue stayed full for longer than the configured wait, or writing failed.",
        )?;
        let recorder_dropped_bytes_total = IntCounter::new(
            "dicomtap_recorder_dropped_bytes_total",
            "Forwarded bytes missing from the recording (queue full past the wait, or failed writes such as a full disk).",
        )?;
        let recorder_written_bytes_total = counter_vec(
            "dicomtap_recorder_written_bytes_total",
            "Capture bytes written, by io: direct (O_DIRECT, no page cache) or page_cache (without direct I/O, or while the disk was behind).",
            &["io"],
        )?;
        let analysis_dropped_bytes_total = IntCounter::new(
            "dicomtap_analysis_dropped_bytes_total",
            "Bytes forwarded but not analysed because the analysis queue was full (reported to the engine as gaps).",
        )?;
        let protocol_findings_total = counter_vec(
            "dicomtap_protocol_findings_total",
            "Protocol findings of the wire engine by code and severity.",
            &["code", "severity"],
        )?;
        let aborts_total = counter_vec(
            "dicomtap_aborts_total",
            "A-ABORTs by source: service_user, service_provider, proxy (sent by the proxy itself), unknown.",
            &["source"],
        )?;
        let tls_handshakes_total = counter_vec(
            "dicomtap_tls_handshakes_total",
            "TLS handshakes by leg (client, upstream, metrics: scrapers of the metrics endpoint) and result (ok, no_certificate, bad_certificate, expired_certificate, unknown_ca, not_tls, protocol, timeout, closed, other).",
            &["leg", "result"],
        )?;
        let access_denied_total = counter_vec(
            "dicomtap_access_denied_total",
            "Associations refused by access control, by reason (source, calling_ae, called_ae, unreadable_rq).",
            &["reason"],
        )?;
        let conformance_findings_total = counter_vec(
            "dicomtap_conformance_findings_total",
            "Conformance findings against the loaded device statements, by device, rule and severity.",
            &["device", "rule", "severity"],
        )?;
        let event_log_suppressed_total = counter_vec(
            "dicomtap_event_log_suppressed_total",
            "Event-log lines held back by the per-association bounds, by reason (repeated_finding, small_p_data, over_budget).",
            &["reason"],
        )?;
        let event_log_lines = Histogram::with_opts(
            HistogramOpts::new(
                "dicomtap_event_log_lines_per_association",
                "Event-log lines written per association (bounded: docs/events.md).",
            )
            .buckets(prometheus::exponential_buckets(8.0, 4.0, 10)?),
        )?;
        let connections_shed_total = counter_vec(
            "dicomtap_connections_shed_total",
            "Connections the proxy closed or refused to protect its slots, by reason (associate_rq_timeout, idle_timeout, source_limit).",
            &["reason"],
        )?;
        registry.register(Box::new(event_log_suppressed_total.clone()))?;
        registry.register(Box::new(event_log_lines.clone()))?;
        registry.register(Box::new(connections_shed_total.clone()))?;
        registry.register(Box::new(associations_total.clone()))?;
        registry.register(Box::new(associations_active.clone()))?;
        registry.register(Box::new(dimse_messages_total.clone()))?;
        registry.register(Box::new(dimse_response_seconds.clone()))?;
        registry.register(Box::new(pdu_bytes.clone()))?;
        registry.register(Box::new(bytes_total.clone()))?;
        registry.register(Box::new(presentation_contexts_total.clone()))?;
        registry.register(Box::new(upstream_errors_total.clone()))?;
        registry.register(Box::new(recorder_dropped_total.clone()))?;
        registry.register(Box::new(recorder_dropped_bytes_total.clone()))?;
        registry.register(Box::new(recorder_written_bytes_total.clone()))?;
        registry.register(Box::new(analysis_dropped_bytes_total.clone()))?;
        registry.register(Box::new(protocol_findings_total.clone()))?;
        registry.register(Box::new(aborts_total.clone()))?;
        registry.register(Box::new(tls_handshakes_total.clone()))?;
        registry.register(Box::new(access_denied_total.clone()))?;
        registry.register(Box::new(conformance_findings_total.clone()))?;
        Ok(Metrics {
            registry,
            associations_total,
            associations_active,
            dimse_messages_total,
            dimse_response_seconds,
            pdu_bytes,
            bytes_total,
            presentation_contexts_total,
            upstream_errors_total,
            recorder_dropped_total,
            recorder_dropped_bytes_total,
            recorder_written_bytes_total,
            analysis_dropped_bytes_total,
            protocol_findings_total,
            aborts_total,
            tls_handshakes_total,
            access_denied_total,
            conformance_findings_total,
            event_log_suppressed_total,
            event_log_lines,
            connections_shed_total,
            ae_titles: AeCap::new(ae_title_cap),
            sop_classes: AeCap::with_len(SOP_CLASS_LABEL_CAP, 64),
        })
    }

    /// For passive monitoring (`dicomtap monitor`): removes what only the proxy has
    /// (recorder, upstream, TLS handshakes, access control, analysis queue), so nothing
    /// is exported that cannot move.
    pub fn passive(&self) -> Result<(), MetricsError> {
        self.registry
            .unregister(Box::new(self.recorder_dropped_total.clone()))?;
        self.registry
            .unregister(Box::new(self.recorder_dropped_bytes_total.clone()))?;
        self.registry
            .unregister(Box::new(self.recorder_written_bytes_total.clone()))?;
        self.registry
            .unregister(Box::new(self.analysis_dropped_bytes_total.clone()))?;
        self.registry
            .unregister(Box::new(self.upstream_errors_total.clone()))?;
        self.registry
            .unregister(Box::new(self.tls_handshakes_total.clone()))?;
        self.registry
            .unregister(Box::new(self.access_denied_total.clone()))?;
        Ok(())
    }

    /// Creates the series whose label values are known in advance at zero, so a counter
    /// exists (and `rate()`/`increase()` work) before its first event: aborts by source,
    /// protocol findings by code and severity, bytes by direction.
    pub fn zero_known_series(&self) {
        for source in ["service_user", "service_provider", "proxy", "unknown"] {
            self.aborts_total.with_label_values(&[source]);
        }
        for direction in ["to_upstream", "to_client"] {
            self.bytes_total.with_label_values(&[direction]);
        }
        for code in dicomtap_wire::FindingCode::ALL {
            for severity in ["info", "warning", "error"] {
                self.protocol_findings_total
                    .with_label_values(&[code.id(), severity]);
            }
        }
    }

    /// Registers the capture health metrics of passive monitoring, for one input.
    pub fn capture_health(&self, input: &str) -> Result<CaptureHealth, MetricsError> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, MetricsError> {
            let c = IntCounter::with_opts(Opts::new(name, help).const_label("input", input))?;
            self.registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> Result<prometheus::Gauge, MetricsError> {
            let g =
                prometheus::Gauge::with_opts(Opts::new(name, help).const_label("input", input))?;
            self.registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(CaptureHealth {
            packets: counter(
                "dicomtap_capture_packets_total",
                "Packets read from the capture input.",
            )?,
            bytes: counter(
                "dicomtap_capture_bytes_total",
                "Captured bytes of those packets.",
            )?,
            snapped: counter(
                "dicomtap_capture_snapped_packets_total",
                "Packets captured shorter than on the wire (snap length): their payload is missing.",
            )?,
            gaps: counter(
                "dicomtap_capture_gaps_total",
                "Holes in TCP streams the capture never filled (packets the SPAN port or capture lost).",
            )?,
            gap_bytes: counter(
                "dicomtap_capture_gap_bytes_total",
                "Bytes those holes stand for.",
            )?,
            out_of_order: counter(
                "dicomtap_capture_out_of_order_total",
                "Segments that arrived ahead of a hole and were buffered.",
            )?,
            retransmissions: counter(
                "dicomtap_capture_retransmissions_total",
                "Segments carrying only bytes already seen.",
            )?,
            evicted: counter(
                "dicomtap_capture_connections_evicted_total",
                "Connections dropped to make room in a full flow table (their associations are cut short).",
            )?,
            expired: counter(
                "dicomtap_capture_connections_expired_total",
                "Connections closed after the idle timeout without a FIN or RST seen.",
            )?,
            last_packet: gauge(
                "dicomtap_capture_last_packet_timestamp_seconds",
                "Capture time of the last packet read (UNIX seconds); 0 until the first. Alert when it stops moving.",
            )?,
            seen: Default::default(),
        })
    }

    /// The registry, for embedding into another exporter.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// An AE title as a bounded label value.
    pub fn ae_label(&self, ae: &str) -> String {
        self.ae_titles.label(ae)
    }

    /// A SOP class keyword as a bounded label of `presentation_contexts_total`.
    pub fn sop_class_label(&self, keyword: &str) -> String {
        self.sop_classes.label(keyword)
    }

    /// Counts one PDU header seen on the wire.
    pub fn observe_pdu(&self, pdu_type: u8, total_len: u64) {
        self.pdu_bytes
            .with_label_values(&[pdu_type_name(pdu_type)])
            .observe(total_len as f64);
    }
}

/// The capture health of one passive input (`dicomtap monitor`): the counters follow the
/// reassembler's [`CaptureStats`](dicomtap_analyzer::capture::CaptureStats).
pub struct CaptureHealth {
    pub packets: IntCounter,
    pub bytes: IntCounter,
    pub snapped: IntCounter,
    pub gaps: IntCounter,
    pub gap_bytes: IntCounter,
    pub out_of_order: IntCounter,
    pub retransmissions: IntCounter,
    pub evicted: IntCounter,
    pub expired: IntCounter,
    pub last_packet: prometheus::Gauge,
    /// What the counters already hold of the input's statistics.
    seen: [u64; 9],
}

impl CaptureHealth {
    /// Brings the counters up to `stats` (cumulative for the input being read) and the
    /// last packet time to `last_ts_us`.
    pub fn update(&mut self, stats: &dicomtap_analyzer::capture::CaptureStats, last_ts_us: u64) {
        let now = [
            stats.packets,
            stats.bytes,
            stats.snapped_packets,
            stats.gaps,
            stats.gap_bytes,
            stats.out_of_order,
            stats.retransmissions,
            stats.connections_evicted,
            stats.connections_expired,
        ];
        let counters = [
            &self.packets,
            &self.bytes,
            &self.snapped,
            &self.gaps,
            &self.gap_bytes,
            &self.out_of_order,
            &self.retransmissions,
            &self.evicted,
            &self.expired,
        ];
        for (i, c) in counters.into_iter().enumerate() {
            if now[i] > self.seen[i] {
                c.inc_by(now[i] - self.seen[i]);
            }
            self.seen[i] = now[i];
        }
        if last_ts_us > 0 {
            self.last_packet.set(last_ts_us as f64 / 1e6);
        }
    }
}

/// AE titles as label values: the first `cap` distinct ones, then `other`.
struct AeCap {
    cap: usize,
    /// Longest label value (16 for AE titles; SOP class keywords are longer).
    max_len: usize,
    seen: Mutex<HashSet<String>>,
}

impl AeCap {
    fn new(cap: usize) -> Self {
        AeCap::with_len(cap, 16)
    }

    fn with_len(cap: usize, max_len: usize) -> Self {
        AeCap {
            cap,
            max_len,
            seen: Mutex::new(HashSet::new()),
        }
    }

    fn label(&self, ae: &str) -> String {
        let clean: String = ae
            .trim()
            .chars()
            .take(self.max_len)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if clean.is_empty() {
            return "empty".into();
        }
        let Ok(mut seen) = self.seen.lock() else {
            return "other".into();
        };
        if seen.contains(&clean) {
            return clean;
        }
        if seen.len() < self.cap {
            seen.insert(clean.clone());
            return clean;
        }
        "other".into()
    }
}

/// Where [`AssociationObserver`] keeps the series of a PDU type: one slot per label of
/// [`pdu_type_name`].
fn pdu_type_slot(t: u8) -> usize {
    match t {
        0x01..=0x07 => t as usize,
        _ => 0,
    }
}

/// Label of a PDU type.
pub fn pdu_type_name(t: u8) -> &'static str {
    match t {
        0x01 => "associate_rq",
        0x02 => "associate_ac",
        0x03 => "associate_rj",
        0x04 => "p_data_tf",
        0x05 => "release_rq",
        0x06 => "release_rp",
        0x07 => "abort",
        _ => "unknown",
    }
}

/// A UID as a bounded label: its registry keyword, else `private` (outside the DICOM
/// root) or `unknown`.
pub fn uid_label(uid: Option<&str>) -> String {
    match uid {
        None => "unknown".into(),
        Some(uid) => match dicomtap_wire::uid::keyword(uid) {
            Some(k) => k.to_string(),
            None if uid.starts_with("1.2.840.10008.") => "unknown".into(),
            None if uid.is_empty() => "unknown".into(),
            None => "private".into(),
        },
    }
}

/// Per-association metric bookkeeping: AE labels, proposed contexts, the outcome.
///
/// It also keeps the labelled series it updates per PDU and per DIMSE message: resolving
/// one through `with_label_values` hashes every label value and takes the vector's lock,
/// which was a good part of the analysis cost of a small message. A series is resolved the
/// first time it is needed, exactly when it was before, so the exposition is unchanged.
pub struct AssociationObserver {
    metrics: Arc<Metrics>,
    calling: String,
    called: String,
    proposed: HashMap<u8, String>,
    counted: bool,
    /// `dicomtap_pdu_bytes` by [`pdu_type_slot`].
    pdu_bytes: [Option<Histogram>; 8],
    /// `dicomtap_dimse_messages_total` by command, SOP class UID as sent and status class.
    dimse: Vec<(DimseKey, IntCounter)>,
    /// `dicomtap_dimse_response_seconds` by command.
    response_seconds: Vec<(&'static str, Histogram)>,
}

/// What a `dicomtap_dimse_messages_total` series of an association is looked up by: the
/// UID as sent (its label is derived from it), so a repeated message needs no registry
/// lookup either.
struct DimseKey {
    command: &'static str,
    sop_uid: Option<String>,
    status: &'static str,
}

/// Series cached per association and metric; beyond this (a peer cycling through many SOP
/// classes) they are resolved each time as before.
const SERIES_CACHE: usize = 32;

impl AssociationObserver {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AssociationObserver {
            metrics,
            calling: "unknown".into(),
            called: "unknown".into(),
            proposed: HashMap::new(),
            counted: false,
            pdu_bytes: Default::default(),
            dimse: Vec::new(),
            response_seconds: Vec::new(),
        }
    }

    /// Counts one PDU header seen on the wire, as [`Metrics::observe_pdu`].
    pub fn observe_pdu(&mut self, pdu_type: u8, total_len: u64) {
        let slot = &mut self.pdu_bytes[pdu_type_slot(pdu_type)];
        let h = slot.get_or_insert_with(|| {
            self.metrics
                .pdu_bytes
                .with_label_values(&[pdu_type_name(pdu_type)])
        });
        h.observe(total_len as f64);
    }

    fn count_dimse(&mut self, command: &'static str, sop_uid: Option<&str>, status: &'static str) {
        let hit = self.dimse.iter().find(|(k, _)| {
            k.command == command && k.status == status && k.sop_uid.as_deref() == sop_uid
        });
        if let Some((_, c)) = hit {
            c.inc();
            return;
        }
        let sop = uid_label(sop_uid);
        let c = self
            .metrics
            .dimse_messages_total
            .with_label_values(&[command, &sop, status]);
        c.inc();
        if self.dimse.len() < SERIES_CACHE {
            let key = DimseKey {
                command,
                sop_uid: sop_uid.map(str::to_owned),
                status,
            };
            self.dimse.push((key, c));
        }
    }

    fn observe_response_time(&mut self, command: &'static str, seconds: f64) {
        if let Some((_, h)) = self.response_seconds.iter().find(|(c, _)| *c == command) {
            h.observe(seconds);
            return;
        }
        let h = self
            .metrics
            .dimse_response_seconds
            .with_label_values(&[command]);
        h.observe(seconds);
        if self.response_seconds.len() < SERIES_CACHE {
            self.response_seconds.push((command, h));
        }
    }

    /// Counts the association's outcome once.
    pub fn outcome(&mut self, result: &str) {
        if self.counted {
            return;
        }
        self.counted = true;
        self.metrics
            .associations_total
            .with_label_values(&[result, &self.calling, &self.called])
            .inc();
    }

    /// Updates the metrics for one engine event.
    pub fn observe(&mut self, ev: &Event) {
        let m = &self.metrics;
        match &ev.kind {
            EventKind::AssociateRq(rq) => {
                self.calling = m.ae_label(&rq.calling_ae);
                self.called = m.ae_label(&rq.called_ae);
                self.proposed = rq
                    .contexts
                    .iter()
                    .map(|c| (c.id, c.abstract_syntax.clone()))
                    .collect();
            }
            EventKind::AssociateAc(ac) => {
                for r in &ac.results {
                    let sop =
                        m.sop_class_label(&uid_label(self.proposed.get(&r.id).map(String::as_str)));
                    let ts = if r.accepted() {
                        uid_label(r.transfer_syntax.as_deref())
                    } else {
                        "none".into()
                    };
                    m.presentation_contexts_total
                        .with_label_values(&[&sop, &ts, r.result_name])
                        .inc();
                }
                self.outcome("accepted");
            }
            EventKind::AssociateRj(_) => self.outcome("rejected"),
            EventKind::Abort(a) => {
                let source = match a.source {
                    0 => "service_user",
                    2 => "service_provider",
                    _ => "unknown",
                };
                m.aborts_total.with_label_values(&[source]).inc();
            }
            EventKind::Command(c) => {
                let cmd = &c.command;
                let sop_uid = cmd
                    .affected_sop_class
                    .as_deref()
                    .or(cmd.requested_sop_class.as_deref())
                    .or(c.abstract_syntax.as_deref());
                let status = match &cmd.status {
                    Some(s) => status_class_name(s.class),
                    None => "none",
                };
                self.count_dimse(cmd.command, sop_uid, status);
                if let Some(lat) = c.latency_us
                    && !cmd.is_request()
                {
                    self.observe_response_time(cmd.command, lat as f64 / 1e6);
                }
            }
            EventKind::Finding(f) => {
                m.protocol_findings_total
                    .with_label_values(&[f.code.id(), &f.severity.to_string()])
                    .inc();
            }
            _ => {}
        }
        let _ = Side::Requestor;
    }
}

fn status_class_name(c: dicomtap_wire::status::StatusClass) -> &'static str {
    use dicomtap_wire::status::StatusClass::*;
    match c {
        Success => "success",
        Warning => "warning",
        Failure => "failure",
        Cancel => "cancel",
        Pending => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strict reading of the text exposition format: every sample belongs to a declared
    /// family, label values are quoted, values are numbers.
    pub(crate) fn parse_exposition(text: &str) -> Result<usize, String> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = 0;
        for (i, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                let (name, ty) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty) {
                    return Err(format!("line {}: bad type {ty}", i + 1));
                }
                types.insert(name.to_string(), ty.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name_labels, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("line {}: no value", i + 1))?;
            value
                .parse::<f64>()
                .map_err(|_| format!("line {}: bad value {value}", i + 1))?;
            let name = name_labels.split('{').next().unwrap_or("");
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            {
                return Err(format!("line {}: bad name {name}", i + 1));
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(name);
            if !types.contains_key(family) {
                return Err(format!("line {}: {name} has no TYPE", i + 1));
            }
            if let Some(labels) = name_labels.strip_prefix(name) {
                if !(labels.is_empty() || labels.starts_with('{') && labels.ends_with('}')) {
                    return Err(format!("line {}: bad labels {labels}", i + 1));
                }
            }
            samples += 1;
        }
        Ok(samples)
    }

    #[test]
    fn exposition_parses_back() -> Result<(), String> {
        let m = Metrics::new(2).map_err(|e| e.to_string())?;
        m.bytes_total.with_label_values(&["to_upstream"]).inc_by(10);
        m.observe_pdu(4, 16390);
        m.dimse_response_seconds
            .with_label_values(&["C-ECHO-RSP"])
            .observe(0.002);
        m.associations_total
            .with_label_values(&["accepted", "A", "B"])
            .inc();
        let text = m.render();
        let n = parse_exposition(&text)?;
        assert!(n > 20, "{text}");
        assert!(text.contains("dicomtap_pdu_bytes_bucket{type=\"p_data_tf\""));
        Ok(())
    }

    #[test]
    fn ae_titles_are_capped() -> Result<(), String> {
        let m = Metrics::new(2).map_err(|e| e.to_string())?;
        assert_eq!(m.ae_label("ONE "), "ONE");
        assert_eq!(m.ae_label("TWO"), "TWO");
        assert_eq!(m.ae_label("THREE"), "other");
        assert_eq!(m.ae_label("ONE"), "ONE");
        assert_eq!(m.ae_label("A\"B"), "other");
        Ok(())
    }

    #[test]
    fn sop_class_labels_are_whole_keywords_and_bounded() {
        let m = Metrics::new(10).unwrap();
        let long = "PatientRootQueryRetrieveInformationModelGet";
        assert_eq!(m.sop_class_label(long), long);
        let labels: HashSet<String> = (0..100)
            .map(|i| m.sop_class_label(&format!("Class{i}Storage")))
            .collect();
        assert_eq!(labels.len(), SOP_CLASS_LABEL_CAP, "47 more and `other`");
        assert!(labels.contains("other"));
        assert_eq!(
            m.sop_class_label(long),
            long,
            "a label seen keeps its value"
        );
    }

    #[test]
    fn passive_metrics_export_no_proxy_only_families_and_known_zeros() {
        let m = Metrics::new(10).unwrap();
        m.passive().unwrap();
        m.zero_known_series();
        let mut h = m.capture_health("stdin").unwrap();
        let text = m.render();
        for absent in [
            "recorder_",
            "upstream_errors",
            "tls_handshakes",
            "access_denied",
        ] {
            assert!(!text.contains(absent), "{absent}:\n{text}");
        }
        assert!(text.contains("dicomtap_aborts_total{source=\"service_provider\"} 0"));
        assert!(text.contains("dicomtap_capture_gap_bytes_total{input=\"stdin\"} 0"));
        let stats = dicomtap_analyzer::capture::CaptureStats {
            packets: 7,
            gaps: 1,
            gap_bytes: 1400,
            ..Default::default()
        };
        h.update(&stats, 1_700_000_000_500_000);
        h.update(&stats, 1_700_000_001_000_000);
        let text = m.render();
        assert!(
            text.contains("dicomtap_capture_packets_total{input=\"stdin\"} 7"),
            "{text}"
        );
        assert!(text.contains("dicomtap_capture_gap_bytes_total{input=\"stdin\"} 1400"));
        assert!(text.contains(
            "dicomtap_capture_last_packet_timestamp_seconds{input=\"stdin\"} 1700000001"
        ));
    }

    #[test]
    fn uid_labels() {
        assert_eq!(uid_label(Some("1.3.6.1.4.1.9590.100.1")), "private");
        assert_eq!(uid_label(None), "unknown");
    }
}
