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

    /// Writes to the device (stores objects, or copies them with C-MOVE): runs only with
    /// [`ProbeConfig::allow_writes`]. `max-pdu`, `load`, `timeouts` and `malformed` are
    /// not counted: without writes they leave out their C-STOREs and say so.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Check::Store | Check::Commitment | Check::FindMove | Check::Matching | Check::Charset
        )
    }

    /// The checks run when none is named: every non-disruptive one that needs nothing
    /// beyond the target (no listener, no files); the writing ones only when writes are
    /// allowed.
    pub fn defaults(allow_writes: bool) -> Vec<Check> {
        let mut v = vec![Check::Echo, Check::Contexts];
        if allow_writes {
            v.extend([Check::Store, Check::Commitment]);
        }
        v.push(Check::MaxPdu);
        v
    }

    /// What `all` means: every check that neither disturbs nor (unless `allow_writes`)
    /// writes.
    pub fn all(allow_writes: bool) -> Vec<Check> {
        Check::ALL
            .into_iter()
            .filter(|c| !c.disruptive() && (allow_writes || !c.writes()))
            .collect()
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
    /// Every row (JSON always; text, HTML and JUnit with `--detail` or without `brief`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    /// The rows a person reads first (what differs or failed), shown instead of `table`
    /// unless the full detail is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brief: Option<Table>,
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
            brief: None,
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
    /// What the run was going to write (before anything was written).
    pub planned_writes: Vec<String>,
    /// Every study the run wrote to the device, so it can be deleted.
    pub written: Vec<Written>,
    /// Why the run stopped before its last check (the target refused the connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// A study the probe wrote to the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub study_uid: String,
    pub patient_id: String,
    pub patient_name: String,
    /// Instances the device answered with Success or Warning.
    pub instances: usize,
    /// The check that wrote it.
    pub check: Check,
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
    /// by [`dicomtap_proxy::tls::build_server_config`]; `None` = plain TCP.
    pub listen_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Checks may store objects on the device (`--allow-writes`). Without it the writing
    /// checks are skipped and the others leave their C-STOREs out.
    pub allow_writes: bool,
    /// Prefix of every generated patient's name and ID (`--test-patient`); upper-case
    /// letters, digits, `-` and `_`.
    pub test_patient: String,
    /// Told what a long check is waiting for, and for how long at most (a terminal's
    /// progress line).
    pub progress: Option<Progress>,
}

/// A progress callback: what the probe is doing now.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// The default [`ProbeConfig::test_patient`].
pub const DEFAULT_TEST_PATIENT: &str = "DICOMTAPTEST";

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
            allow_writes: false,
            test_patient: DEFAULT_TEST_PATIENT.to_string(),
            progress: None,
        }
    }

    /// Tells the progress callback (if any).
    pub fn progress(&self, what: &str) {
        if let Some(p) = &self.progress {
            (p.0)(what);
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

/// A run prepared: the checks in their canonical order, this run's patient token and
/// what the checks will write ([`plan`]).
#[derive(Debug, Clone)]
pub struct Plan {
    pub checks: Vec<Check>,
    /// Prefix + letters unique to this run: every generated patient's name and ID starts
    /// with it.
    pub token: String,
    /// One line per writing check: patients, studies, instances.
    pub writes: Vec<String>,
}

impl Plan {
    /// Checks that write although writes are not allowed.
    pub fn refused_writes(&self, cfg: &ProbeConfig) -> Vec<Check> {
        if cfg.allow_writes {
            return Vec::new();
        }
        self.checks.iter().copied().filter(|c| c.writes()).collect()
    }
}

/// Orders `wanted`, draws this run's token and says what will be written. With writes
/// allowed, `store` brings `commitment` along: every store is followed by a Storage
/// Commitment request when the device accepts one (skipped, with why, when it does not).
pub fn plan(config: &ProbeConfig, wanted: &[Check]) -> Plan {
    let mut checks: Vec<Check> = wanted.to_vec();
    if config.allow_writes && checks.contains(&Check::Store) {
        checks.push(Check::Commitment);
    }
    checks.sort();
    checks.dedup();
    let token = checks::run_token(&config.test_patient);
    let writes = checks::planned_writes(config, &checks, &token);
    Plan {
        checks,
        token,
        writes,
    }
}

/// Runs the checks in their canonical order and returns the report.
pub fn run(config: &ProbeConfig, wanted: &[Check]) -> Result<ProbeReport, ProbeError> {
    run_plan(config, &plan(config, wanted))
}

/// Runs a [`plan`]. Stops after the first check that could not connect to the target at
/// all ([`ProbeReport::stopped`]).
pub fn run_plan(config: &ProbeConfig, plan: &Plan) -> Result<ProbeReport, ProbeError> {
    let listener = match config.listen {
        Some(addr) => Some(
            listener::Listener::start_tls(addr, config.listen_tls.clone())
                .map_err(|source| ProbeError::Listen { addr, source })?,
        ),
        None => None,
    };
    let mut state = checks::State::new(config, listener, plan.token.clone());
    let started_us = link::now_us();
    let mut results = Vec::new();
    let mut stopped = None;
    for &c in &plan.checks {
        config.progress(&format!("{}: running", c.name()));
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
        if let Some(why) = state.unreachable() {
            stopped = Some(format!(
                "{why}; stopped after {} (is the device up, and is {} its DICOM port?)",
                c.name(),
                config.target
            ));
            break;
        }
    }
    Ok(ProbeReport {
        target: config.target.to_string(),
        called_ae: config.called_ae.clone(),
        calling_ae: config.calling_ae.clone(),
        statement: config.statement.as_ref().map(|(s, _)| s.origin()),
        tls: state.tls_info(),
        started_us,
        results,
        planned_writes: plan.writes.clone(),
        written: state.written(),
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_and_defaults_write_nothing_unless_allowed() {
        for c in Check::all(false).into_iter().chain(Check::defaults(false)) {
            assert!(!c.writes() && !c.disruptive(), "{}", c.name());
        }
        assert!(Check::all(true).contains(&Check::Commitment));
        assert!(!Check::all(true).iter().any(|c| c.disruptive()));
        assert_eq!(
            Check::defaults(true),
            vec![
                Check::Echo,
                Check::Contexts,
                Check::Store,
                Check::Commitment,
                Check::MaxPdu
            ]
        );
    }

    #[test]
    fn a_plan_names_its_patients_and_refuses_writes_without_the_flag() {
        let mut cfg = ProbeConfig::new(SocketAddr::from(([127, 0, 0, 1], 104)), "PACS");
        cfg.test_patient = "ZZTEST".into();
        let p = plan(&cfg, &[Check::Matching, Check::Echo, Check::Store]);
        assert_eq!(p.checks, vec![Check::Echo, Check::Store, Check::Matching]);
        assert!(p.token.starts_with("ZZTEST") && p.token.len() == 11);
        assert_eq!(p.refused_writes(&cfg), vec![Check::Store, Check::Matching]);
        assert_eq!(p.writes.len(), 2);
        assert!(p.writes[0].contains(&format!("{}^STORE", p.token)));
        assert!(p.writes[1].contains("4 patients"));
        cfg.allow_writes = true;
        assert!(p.refused_writes(&cfg).is_empty());
    }
}
