//! Reports built from finished sessions: aggregates that stay small whatever the number
//! of associations (one compact row per association, histograms for latencies), rendered
//! as a self-contained HTML page.

pub mod html;

use std::collections::BTreeMap;

use dicomtap_wire::Severity;
use serde::Serialize;

use crate::session::{Ending, Outcome, Session};

/// One association in the report: what the timeline and the tables need, nothing more.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: u64,
    pub start_us: u64,
    pub end_us: u64,
    pub client: String,
    pub server: String,
    pub calling_ae: String,
    pub called_ae: String,
    pub outcome: String,
    pub ending: String,
    pub accepted: usize,
    pub proposed: u64,
    pub requests: u64,
    pub failures: u64,
    pub bytes: u64,
    pub errors: u64,
    pub warnings: u64,
}

/// Upper bounds (milliseconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS_MS: [f64; 14] = [
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1000.0,
    2000.0,
    5000.0,
    f64::INFINITY,
];

/// Per-device (AE title) totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceTotals {
    pub as_requestor: u64,
    pub as_acceptor: u64,
    pub rejected: u64,
    pub aborted: u64,
    pub requests: u64,
    pub success: u64,
    pub warning: u64,
    pub failure: u64,
    pub bytes_sent: u64,
    pub implementation: BTreeMap<String, u64>,
}

/// A finding line for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFinding {
    pub association: u64,
    pub ts_us: u64,
    pub severity: Severity,
    pub code: String,
    pub device: String,
    pub message: String,
}

/// Accumulates sessions into a report.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub title: String,
    pub sources: Vec<String>,
    pub rows: Vec<Row>,
    pub devices: BTreeMap<String, DeviceTotals>,
    /// Latency histogram counts per DIMSE service, one count per bucket of [`LATENCY_BUCKETS_MS`].
    pub latency: BTreeMap<String, Vec<u64>>,
    pub findings: Vec<ReportFinding>,
    pub findings_dropped: u64,
}

/// Rows and findings kept at most; the rest are counted.
const MAX_ROWS: usize = 50_000;
const MAX_FINDINGS: usize = 20_000;

impl Report {
    pub fn new(title: impl Into<String>) -> Self {
        Report {
            title: title.into(),
            ..Report::default()
        }
    }

    /// Adds one finished association.
    pub fn add(&mut self, s: &Session) {
        let calling = s.requestor.ae_title.clone().unwrap_or_else(|| "?".into());
        let called = s.acceptor.ae_title.clone().unwrap_or_else(|| "?".into());
        let requests: u64 = s.dimse.values().map(|c| c.requests).sum();
        let failures: u64 = s.dimse.values().map(|c| c.failure).sum();
        let errors = s.findings_of(Severity::Error);
        let warnings = s.findings_of(Severity::Warning);
        if self.rows.len() < MAX_ROWS {
            self.rows.push(Row {
                id: s.id,
                start_us: s.first_ts_us,
                end_us: s.last_ts_us,
                client: s.client.map(|a| a.to_string()).unwrap_or_default(),
                server: s.server.map(|a| a.to_string()).unwrap_or_default(),
                calling_ae: calling.clone(),
                called_ae: called.clone(),
                outcome: outcome_word(&s.outcome).to_string(),
                ending: ending_word(&s.ending),
                accepted: s.accepted_contexts(),
                proposed: s.proposed_contexts(),
                requests,
                failures,
                bytes: s.requestor.bytes + s.acceptor.bytes,
                errors,
                warnings,
            });
        }
        let rejected = matches!(s.outcome, Outcome::Rejected { .. }) as u64;
        let aborted = matches!(s.ending, Ending::Aborted { .. }) as u64;
        for (ae, facts, requestor) in [
            (&calling, &s.requestor, true),
            (&called, &s.acceptor, false),
        ] {
            let d = self.devices.entry(ae.clone()).or_default();
            if requestor {
                d.as_requestor += 1;
            } else {
                d.as_acceptor += 1;
            }
            d.rejected += rejected;
            d.aborted += aborted;
            d.bytes_sent += facts.bytes;
            if let Some(uid) = &facts.implementation_class_uid {
                let label = match &facts.implementation_version_name {
                    Some(v) => format!("{uid} {v}"),
                    None => uid.clone(),
                };
                *d.implementation.entry(label).or_default() += 1;
            }
        }
        for x in &s.exchanges {
            let requester = match x.by {
                dicomtap_wire::Side::Requestor => &calling,
                dicomtap_wire::Side::Acceptor => &called,
            };
            let d = self.devices.entry(requester.clone()).or_default();
            d.requests += 1;
            match x.status_class {
                Some(dicomtap_wire::status::StatusClass::Success) => d.success += 1,
                Some(dicomtap_wire::status::StatusClass::Warning) => d.warning += 1,
                Some(_) => d.failure += 1,
                None => {}
            }
            if let Some(l) = x.latency_us {
                let ms = l as f64 / 1000.0;
                let bucket = LATENCY_BUCKETS_MS
                    .iter()
                    .position(|b| ms <= *b)
                    .unwrap_or(LATENCY_BUCKETS_MS.len() - 1);
                let h = self
                    .latency
                    .entry(x.command.clone())
                    .or_insert_with(|| vec![0; LATENCY_BUCKETS_MS.len()]);
                h[bucket] += 1;
            }
        }
        for f in &s.findings {
            if self.findings.len() >= MAX_FINDINGS {
                self.findings_dropped += 1;
                continue;
            }
            let device = match f.from {
                dicomtap_wire::Side::Requestor => calling.clone(),
                dicomtap_wire::Side::Acceptor => called.clone(),
            };
            self.findings.push(ReportFinding {
                association: s.id,
                ts_us: f.ts_us,
                severity: f.finding.severity,
                code: f.finding.code.id().to_string(),
                device,
                message: f.finding.message.clone(),
            });
        }
    }

    /// Adds a finding that does not come from one session's engine (conformance rules).
    pub fn add_finding(&mut self, f: ReportFinding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(f);
        } else {
            self.findings_dropped += 1;
        }
    }
}

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Accepted => "accepted",
        Outcome::Rejected { .. } => "rejected",
        Outcome::NoAnswer => "no answer",
        Outcome::NegotiationNotSeen => "not seen",
    }
}

fn ending_word(e: &Ending) -> String {
    match e {
        Ending::Released => "released".into(),
        Ending::Aborted { by, .. } => format!("aborted by {by}"),
        Ending::Closed { by, answer, .. } => match answer {
            Some(a) => format!("closed by {by}, then {a} from the {}", by.peer()),
            None => format!("closed by {by}"),
        },
        Ending::Reset { by, answer, .. } => match answer {
            Some(a) => format!("reset by {by}, then {a} from the {}", by.peer()),
            None => format!("reset by {by}"),
        },
        Ending::Rejected => "rejected".into(),
        Ending::Open => "open".into(),
    }
}
