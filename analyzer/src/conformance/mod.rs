//! Conformance checks: device statements set against traffic.
//!
//! [`rules`] is the catalogue (stable ids, severities, why each matters) and, one module
//! per rule family, the checks; [`Checker`] keeps the state of every association whose AEs
//! have a statement, feeds the families event by event, and emits
//! [`ConformanceFinding`]s; [`report`] groups findings per device and
//! rule for text output, [`junit`] writes them as JUnit XML for CI pipelines.
//!
//! The checker is an [`AnalysisSink`], so it runs beside any other sink: [`Checked`] puts
//! it in front of a sink that also wants the findings, [`Tee`] feeds two sinks. It is
//! bounded in memory whatever the traffic: per-association state lives while the
//! association is open, cross-association state (C-STORE successes waiting for a
//! commitment, pending Storage Commitment transactions) is capped and expires.

pub mod checker;
pub mod commit;
pub mod junit;
pub mod report;
pub mod rules;

use std::net::SocketAddr;

use dicomtap_wire::{Event, EventKind, Severity, Side};
use serde::Serialize;

use crate::analysis::AnalysisSink;
use crate::capture::ConnectionInfo;
use crate::session::Session;

pub use checker::{Checker, CheckerConfig};
pub use report::FindingReport;
pub use rules::{Rule, RuleId};

/// Where a finding was seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The capture, recording or live source the traffic came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Association (connection) id, as in `dicomtap analyze` output.
    pub association: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<SocketAddr>,
    /// Who sent the PDU or message the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Side>,
    /// Offset of the PDU (or element) in the sender's byte stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// DIMSE message ID, when the finding is about a message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u16>,
    /// SOP instance, when the finding is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sop_instance: Option<String>,
    /// Capture or arrival time, microseconds since the UNIX epoch.
    pub ts_us: u64,
    /// Earlier traffic the finding relates to (the C-STORE a commitment failure
    /// contradicts, the N-ACTION an overdue report answers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
}

/// A piece of earlier traffic a finding refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Related {
    /// What it was, e.g. "C-STORE-RSP 0000".
    pub what: String,
    pub association: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u16>,
    pub ts_us: u64,
}

/// One difference between a device's statement and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConformanceFinding {
    pub rule: RuleId,
    pub severity: Severity,
    /// `[device] name` of the statement.
    pub device: String,
    /// The AE title of the statement's `[[ae]]`.
    pub ae: String,
    /// What the statement claims (statement key and value).
    pub claim: String,
    /// What the traffic showed.
    pub observed: String,
    pub evidence: Evidence,
}

impl std::fmt::Display for ConformanceFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}/{}: claims {}; observed {} (association #{}",
            self.severity,
            self.rule,
            self.device,
            self.ae,
            self.claim,
            self.observed,
            self.evidence.association
        )?;
        if let Some(id) = self.evidence.message_id {
            write!(f, ", message {id}")?;
        }
        if let (Some(from), Some(off)) = (self.evidence.from, self.evidence.offset) {
            write!(f, ", {from} offset {off}")?;
        }
        f.write_str(")")
    }
}

/// Receives conformance findings.
pub trait FindingSink {
    fn finding(&mut self, finding: &ConformanceFinding);
}

impl FindingSink for Vec<ConformanceFinding> {
    fn finding(&mut self, finding: &ConformanceFinding) {
        self.push(finding.clone());
    }
}

impl FindingSink for FindingReport {
    fn finding(&mut self, finding: &ConformanceFinding) {
        self.add(finding);
    }
}

/// A [`Checker`] in front of another sink: every event and session goes to the checker
/// and then to `inner`, and the findings the checker produced are handed to `inner` as
/// they arise. Data set fragments ([`EventKind::DataFragment`], which the checker needs
/// for Storage Commitment) are not passed on: they are not part of the event log.
pub struct Checked<S> {
    pub checker: Checker,
    pub inner: S,
}

impl<S: AnalysisSink + FindingSink> Checked<S> {
    pub fn new(checker: Checker, inner: S) -> Self {
        Checked { checker, inner }
    }

    fn pass_findings(&mut self) {
        for f in self.checker.drain() {
            self.inner.finding(&f);
        }
    }

    /// End of all input: expires what is pending (overdue commitments) and passes the
    /// last findings on.
    pub fn finish(&mut self) {
        self.checker.finish();
        self.pass_findings();
    }

    pub fn into_parts(self) -> (Checker, S) {
        (self.checker, self.inner)
    }
}

impl<S: AnalysisSink + FindingSink> AnalysisSink for Checked<S> {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        self.checker.observe(conn, event);
        if !matches!(event.kind, EventKind::DataFragment(_)) {
            self.inner.event(conn, event);
        }
        self.pass_findings();
    }

    fn session(&mut self, conn: &ConnectionInfo, session: Session) {
        self.checker.end_association(conn, &session);
        self.inner.session(conn, session);
        self.pass_findings();
    }
}

/// Feeds two sinks with the same events and sessions (the second gets a clone of each
/// session).
pub struct Tee<A, B>(pub A, pub B);

impl<A: AnalysisSink, B: AnalysisSink> AnalysisSink for Tee<A, B> {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        self.0.event(conn, event);
        self.1.event(conn, event);
    }

    fn session(&mut self, conn: &ConnectionInfo, session: Session) {
        self.0.session(conn, session.clone());
        self.1.session(conn, session);
    }
}
