//! The active conformance probe: tests a live DICOM device the way an integration
//! engineer should before go-live (C-ECHO, presentation-context sweep, C-STORE, Storage
//! Commitment, C-FIND/C-MOVE/C-GET, Q/R matching, character sets, max PDU, load, timeouts,
//! malformed data) and sets each result against the device's statement when one is given.
//! Every check runs over TLS when the target is a TLS one ([`ProbeConfig::tls`]).
//!
//! Everything talks over [`link::Link`], a blocking endpoint whose incoming bytes are
//! decoded by the same wire engine as the analyzer. Checks that could disturb a production
//! device ([`Check::disruptive`]) run only when named.

pub mod checks;
pub mod dataset;
pub mod link;
pub mod listener;
pub mod matrix;
pub mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dicomtap_analyzer::statement::{Ae, Statement};
use serde::Serialize;

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Echo,
    Contexts,
    Store,
    Commitment,
    FindMove,
    Matching,
    Charset,
    MaxPdu,
    Load,
    Timeouts,
    Malformed,
}

impl Check {
    pub const ALL: [Check; 11] = [
        Check::Echo,
        Check::Contexts,
        Check::Store,
        Check::Commitment,
        Check::FindMove,
        Check::Matching,
        Check::Charset,
        Check::MaxPdu,
        Check::Load,
        Check::Timeouts,
        Check::Malformed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Echo => "echo",
            Check::Contexts => "contexts",
            Check::Store => "store",
            Check::Commitment => "commitment",
            Check::FindMove => "find-move",
            Check::Matching => "matching",
            Check::Charset => "charset",
            Check::MaxPdu => "max-pdu",
            Check::Load => "load",
            Check::Timeouts => "timeouts",
            Check::Malformed => "malformed",
        }
    }

    pub fn parse(s: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Could disturb a production device: run only when named.
    pub fn disruptive(self) -> bool {
        matches!(self, Check::Load | Check::Timeouts | Check::Malformed)
    }

    /// The checks run when none is named: every non-disruptive one that needs nothing
    /// beyond the target (no listener, no files).
    pub fn defaults() -> Vec<Check> {
        vec![Check::Echo, Check::Contexts, Check::Store, Check::MaxPdu]
    }
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Works, but not as the statement claims.
    DiffersFromStatement,
    /// Could not run (prerequisite missing, service not offered).
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::DiffersFromStatement => "differs-from-statement",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A table in a check's result (rows of strings under headers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub check: Check,
    pub verdict: Verdict,
    pub summary: String,
    pub details: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    pub duration_ms: u64,
}

impl CheckResult {
    pub fn new(check: Check, verdict: Verdict, summary: impl Into<String>) -> Self {
        CheckResult {
            check,
            verdict,
            summary: summary.into(),
            details: Vec::new(),
            table: None,
            duration_ms: 0,
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.details.push(d.into());
        self
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    pub target: String,
    pub called_ae: String,
    pub calling_ae: String,
    pub statement: Option<String>,
    /// What the TLS handshake negotiated, for a TLS target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<link::TlsInfo>,
    pub started_us: u64,
    pub results: Vec<CheckResult>,
}

impl ProbeReport {
    pub fn count(&self, v: Verdict) -> usize {
        self.results.iter().filter(|r| r.verdict == v).count()
    }

    pub fn failed(&self) -> bool {
        self.count(Verdict::Fail) > 0
    }
}

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub target: SocketAddr,
    pub called_ae: String,
    pub calling_ae: String,
    /// The device's statement and the AE in it that matches `called_ae`.
    pub statement: Option<(Statement, Ae)>,
    /// Extra SOP classes (UIDs) for the context sweep.
    pub sop_classes: Vec<String>,
    /// Timeout for connect and for each answer.
    pub timeout: Duration,
    /// Where the probe's own SCP listens (C-MOVE destination, commitment reports).
    pub listen: Option<SocketAddr>,
    /// The AE title the target knows the probe's SCP by.
    pub move_ae: String,
    /// Transfer syntax of the stored object (Implicit or Explicit VR Little Endian).
    pub store_transfer_syntax: String,
    /// How long to wait for a Storage Commitment N-EVENT-REPORT.
    pub commit_wait: Duration,
    /// pydicom's charset_files directory (or any directory of Part-10 files).
    pub charset_files: Option<PathBuf>,
    /// Longest wait for the peer to give up in the timeouts check (each measurement).
    pub timeouts_max: Duration,
    /// Simultaneous associations of the load check; `None` = the statement's
    /// `max_associations.acceptor` + 1 (or 10 without one).
    pub load_associations: Option<u32>,
    /// TLS to the target: every association of every check goes over it.
    pub tls: Option<link::TlsClient>,
    /// TLS on the probe's own listener (`listen`): the rustls server configuration built
    /// by [`crate::tls::build_server_config`]; `None` = plain TCP.
    pub listen_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl ProbeConfig {
    pub fn new(target: SocketAddr, called_ae: &str) -> Self {
        ProbeConfig {
            target,
            called_ae: called_ae.to_string(),
            calling_ae: "DICOMTAP".to_string(),
            statement: None,
            sop_classes: Vec::new(),
            timeout: Duration::from_secs(10),
            listen: None,
            move_ae: "DICOMTAP".to_string(),
            store_transfer_syntax: dataset::EXPLICIT_LE.to_string(),
            commit_wait: Duration::from_secs(10),
            charset_files: None,
            timeouts_max: Duration::from_secs(120),
            load_associations: None,
            tls: None,
            listen_tls: None,
        }
    }

    fn ae(&self) -> Option<&Ae> {
        self.statement.as_ref().map(|(_, a)| a)
    }
}

/// Errors that stop the probe before any check runs.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    // The cause follows as the error's source (printed once, by the chain).
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the checks in their canonical order and returns the report.
pub fn run(config: &ProbeConfig, wanted: &[Check]) -> Result<ProbeReport, ProbeError> {
    let listener = match config.listen {
        Some(addr) => Some(
            listener::Listener::start_tls(addr, config.listen_tls.clone())
                .map_err(|source| ProbeError::Listen { addr, source })?,
        ),
        None => None,
    };
    let mut state = checks::State::new(config, listener);
    let mut order: Vec<Check> = wanted.to_vec();
    order.sort();
    order.dedup();
    let started_us = link::now_us();
    let mut results = Vec::new();
    for c in order {
        let t = std::time::Instant::now();
        let mut r = state.run(c);
        r.duration_ms = t.elapsed().as_millis() as u64;
        tracing::info!(
            check = c.name(),
            verdict = r.verdict.as_str(),
            "{}",
            r.summary
        );
        results.push(r);
    }
    Ok(ProbeReport {
        target: config.target.to_string(),
        called_ae: config.called_ae.clone(),
        calling_ae: config.calling_ae.clone(),
        statement: config.statement.as_ref().map(|(s, _)| s.origin()),
        tls: state.tls_info(),
        started_us,
        results,
    })
}
