//! `dicomtap probe matrix`: C-ECHO from every source AE title to every destination of a
//! site's statements (a directory of them, as `statement import --out-dir` writes), set
//! against each destination's calling-AE allow-list, with the reason of every failure
//! (the reject's result, source and reason; no answer; a refused connection; a failed
//! TLS handshake). Destinations whose statement requires TLS are echoed over TLS.

use dicomtap_analyzer::report::html::escape;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
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
    /// The statement requires DICOM TLS.
    pub tls: bool,
    /// The host the address came from (what a TLS certificate is verified against).
    pub host: String,
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

    /// Sources down, destinations across; a cell says `ok`, `rejected (as listed)`, or
    /// `FAIL n` / `DIFFERS n` where n numbers the line of [`Matrix::problems`] that says why.
    pub fn table(&self) -> Table {
        let mut n = 0;
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
                        Verdict::Pass if c.expected_accept => "ok".to_string(),
                        Verdict::Pass => "rejected (as listed)".to_string(),
                        v => {
                            n += 1;
                            match v {
                                Verdict::Fail => format!("FAIL {n}"),
                                _ => format!("DIFFERS {n}"),
                            }
                        }
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
                ae.hosts.iter().find_map(|h| {
                    let a = (h.as_str(), port).to_socket_addrs().ok()?.next()?;
                    Some((a, h.clone()))
                })
            });
            match addr {
                Some((addr, host)) => destinations.push(Destination {
                    device: s.device.name.clone(),
                    title: ae.title.clone(),
                    addr,
                    accepts: ae.accept_calling_ae_titles.clone(),
                    tls: ae.tls_required(),
                    host,
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

/// One C-ECHO; `Err` says why not in a few words.
fn echo(
    d: &Destination,
    calling: &str,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let rq = AssociateRqBuilder::new(calling, &d.title)
        .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE, EXPLICIT_LE]));
    let client = match (d.tls, tls) {
        (false, _) => None,
        (true, None) => {
            return Err("TLS required by the statement; give --tls-ca to echo over TLS".into());
        }
        (true, Some(config)) => Some(
            super::link::TlsClient::new(config.clone(), &d.host)
                .map_err(|e| format!("TLS: {e}"))?,
        ),
    };
    let mut link = Link::connect_with(d.addr, timeout, client.as_ref()).map_err(|e| match e {
        LinkError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            "connection refused".to_string()
        }
        LinkError::Connect { source, .. } => format!("no connection: {source}"),
        LinkError::Tls { reason, .. } => format!("TLS handshake failed: {reason}"),
        other => other.to_string(),
    })?;
    match link.associate(&rq, timeout) {
        Ok(_) => {}
        Err(LinkError::Rejected(why)) => return Err(format!("rejected: {why}")),
        Err(LinkError::Timeout(..)) => {
            return Err(format!(
                "no answer to the A-ASSOCIATE-RQ within {:.0} s",
                timeout.as_secs_f64()
            ));
        }
        Err(LinkError::Aborted(why)) => return Err(format!("aborted: {why}")),
        Err(LinkError::Closed(_)) => return Err("closed the connection".into()),
        Err(e) => return Err(e.to_string()),
    }
    let pc = link
        .context_for(VERIFICATION, None)
        .map(|c| c.0)
        .ok_or("Verification refused")?;
    let mut cmd = Command::new(field::C_ECHO_RQ);
    cmd.message_id = Some(1);
    cmd.affected_sop_class = Some(VERIFICATION.to_string());
    let ex = link.request(pc, &cmd, None, timeout).map_err(|e| match e {
        LinkError::Timeout(..) => format!(
            "no answer to the C-ECHO within {:.0} s",
            timeout.as_secs_f64()
        ),
        other => other.to_string(),
    })?;
    let _ = link.release(timeout);
    match ex.status() {
        Some(0) => Ok(()),
        Some(s) => Err(format!(
            "C-ECHO status {s:04X} ({})",
            dicomtap_wire::status::classify(s, field::C_ECHO_RSP).meaning
        )),
        None => Err("C-ECHO-RSP without status".into()),
    }
}

/// Runs every cell; destinations whose statement requires TLS are echoed with `tls`.
pub fn run(mut m: Matrix, timeout: Duration, tls: Option<Arc<rustls::ClientConfig>>) -> Matrix {
    let mut cells = Vec::new();
    for s in &m.sources {
        for d in &m.destinations {
            let expected_accept = d
                .accepts
                .as_ref()
                .is_none_or(|l| l.iter().any(|t| t.trim() == s.trim()));
            let result = echo(d, s, timeout, tls.as_ref());
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

impl Matrix {
    /// Failures (and differences), numbered in the order of [`Matrix::table`], one line
    /// each: source -> destination: why.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.sources {
            for d in &self.destinations {
                for c in self.cells.iter().filter(|c| {
                    &c.source == s && c.destination == d.title && c.verdict != Verdict::Pass
                }) {
                    out.push(format!(
                        "{} {} -> {} ({}): {}",
                        out.len() + 1,
                        c.source,
                        c.destination,
                        d.addr,
                        c.outcome
                    ));
                }
            }
        }
        out
    }

    /// A self-contained HTML page: the matrix (sources down, destinations across), then
    /// every failure with its reason.
    pub fn to_html(&self) -> String {
        let mut h = String::from(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dicomtap probe matrix</title>\
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}\
.pass{background:#dfd}.fail{background:#fdd}.differs-from-statement{background:#fed}</style></head><body><h1>dicomtap probe matrix</h1>",
        );
        let fails = self
            .cells
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count();
        let _ = write!(
            h,
            "<p>{} sources, {} destinations, {} pairs: {fails} fail</p><table><tr><th>source \\ destination</th>",
            self.sources.len(),
            self.destinations.len(),
            self.cells.len()
        );
        for d in &self.destinations {
            let _ = write!(
                h,
                "<th>{}<br><small>{} {}{}</small></th>",
                escape(&d.title),
                escape(&d.device),
                d.addr,
                if d.tls { " TLS" } else { "" }
            );
        }
        h.push_str("</tr>");
        for s in &self.sources {
            let _ = write!(h, "<tr><th>{}</th>", escape(s));
            for d in &self.destinations {
                match self
                    .cells
                    .iter()
                    .find(|c| &c.source == s && c.destination == d.title)
                {
                    Some(c) => {
                        let _ = write!(
                            h,
                            "<td class=\"{}\">{}</td>",
                            c.verdict.as_str(),
                            escape(&c.outcome)
                        );
                    }
                    None => h.push_str("<td></td>"),
                }
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        let problems = self.problems();
        if !problems.is_empty() {
            h.push_str("<h2>Failures</h2><ul>");
            for p in problems {
                let _ = write!(h, "<li>{}</li>", escape(&p));
            }
            h.push_str("</ul>");
        }
        if !self.skipped.is_empty() {
            h.push_str("<h2>Left out</h2><ul>");
            for s in &self.skipped {
                let _ = write!(h, "<li>{}</li>", escape(s));
            }
            h.push_str("</ul>");
        }
        h.push_str("</body></html>\n");
        h
    }
}
