//! `dicomtap probe matrix`: C-ECHO from every source AE title to every destination of a
//! device list (statements), set against each destination's calling-AE allow-list.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use dicomtap_analyzer::statement::Statement;
use serde::Serialize;

use super::checks::VERIFICATION;
use super::dataset::{EXPLICIT_LE, IMPLICIT_LE};
use super::link::{AssociateRqBuilder, Link, LinkError, Proposal};
use super::{Table, Verdict};
use dicomtap_wire::dimse::{Command, field};

/// A destination: an acceptor AE with an address.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    pub device: String,
    pub title: String,
    pub addr: SocketAddr,
    /// `None` = accepts any calling AE title.
    pub accepts: Option<Vec<String>>,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub source: String,
    pub destination: String,
    pub outcome: String,
    pub expected_accept: bool,
    pub verdict: Verdict,
}

/// The whole matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub sources: Vec<String>,
    pub destinations: Vec<Destination>,
    /// Acceptor AEs left out (no host or port in the statement).
    pub skipped: Vec<String>,
    pub cells: Vec<Cell>,
}

impl Matrix {
    pub fn failed(&self) -> bool {
        self.cells.iter().any(|c| c.verdict == Verdict::Fail)
    }

    /// Sources down, destinations across.
    pub fn table(&self) -> Table {
        let mut t = Table {
            headers: std::iter::once("source \\ destination".to_string())
                .chain(self.destinations.iter().map(|d| d.title.clone()))
                .collect(),
            rows: Vec::new(),
        };
        for s in &self.sources {
            let mut row = vec![s.clone()];
            for d in &self.destinations {
                let c = self
                    .cells
                    .iter()
                    .find(|c| &c.source == s && c.destination == d.title);
                row.push(
                    c.map(|c| match c.verdict {
                        Verdict::Pass => c.outcome.clone(),
                        v => format!("{} [{}]", c.outcome, v.as_str()),
                    })
                    .unwrap_or_default(),
                );
            }
            t.rows.push(row);
        }
        t
    }
}

/// Sources (initiator AE titles, plus `extra`) and destinations (acceptor AEs with a
/// host and port) from the statements.
pub fn plan(statements: &[Statement], extra_sources: &[String]) -> Matrix {
    let mut sources: Vec<String> = Vec::new();
    let mut destinations = Vec::new();
    let mut skipped = Vec::new();
    for s in statements {
        for ae in &s.ae {
            if ae.initiator && !sources.contains(&ae.title) {
                sources.push(ae.title.clone());
            }
            if !ae.acceptor {
                continue;
            }
            let addr = ae.port.and_then(|port| {
                ae.hosts
                    .iter()
                    .find_map(|h| (h.as_str(), port).to_socket_addrs().ok()?.next())
            });
            match addr {
                Some(addr) => destinations.push(Destination {
                    device: s.device.name.clone(),
                    title: ae.title.clone(),
                    addr,
                    accepts: ae.accept_calling_ae_titles.clone(),
                }),
                None => skipped.push(format!("{} ({}): no hosts/port", ae.title, s.device.name)),
            }
        }
    }
    for e in extra_sources {
        if !sources.contains(e) {
            sources.push(e.clone());
        }
    }
    Matrix {
        sources,
        destinations,
        skipped,
        cells: Vec::new(),
    }
}

fn echo(addr: SocketAddr, calling: &str, called: &str, timeout: Duration) -> Result<(), String> {
    let rq = AssociateRqBuilder::new(calling, called)
        .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE, EXPLICIT_LE]));
    let mut link = Link::connect(addr, timeout).map_err(|e| e.to_string())?;
    match link.associate(&rq, timeout) {
        Ok(_) => {}
        Err(LinkError::Rejected(why)) => return Err(format!("rejected: {why}")),
        Err(e) => return Err(e.to_string()),
    }
    let pc = link
        .context_for(VERIFICATION, None)
        .map(|c| c.0)
        .ok_or("Verification refused")?;
    let mut cmd = Command::new(field::C_ECHO_RQ);
    cmd.message_id = Some(1);
    cmd.affected_sop_class = Some(VERIFICATION.to_string());
    let ex = link
        .request(pc, &cmd, None, timeout)
        .map_err(|e| e.to_string())?;
    let _ = link.release(timeout);
    match ex.status() {
        Some(0) => Ok(()),
        other => Err(format!("C-ECHO status {other:?}")),
    }
}

/// Runs every cell.
pub fn run(mut m: Matrix, timeout: Duration) -> Matrix {
    let mut cells = Vec::new();
    for s in &m.sources {
        for d in &m.destinations {
            let expected_accept = d
                .accepts
                .as_ref()
                .is_none_or(|l| l.iter().any(|t| t.trim() == s.trim()));
            let result = echo(d.addr, s, &d.title, timeout);
            let (outcome, verdict) = match (&result, expected_accept) {
                (Ok(()), true) => ("ok".to_string(), Verdict::Pass),
                (Ok(()), false) => (
                    "ok, though not in accept_calling_ae_titles".to_string(),
                    Verdict::DiffersFromStatement,
                ),
                (Err(e), false) if e.starts_with("rejected") => (e.clone(), Verdict::Pass),
                (Err(e), _) => (e.clone(), Verdict::Fail),
            };
            cells.push(Cell {
                source: s.clone(),
                destination: d.title.clone(),
                outcome,
                expected_accept,
                verdict,
            });
        }
    }
    m.cells = cells;
    m
}
