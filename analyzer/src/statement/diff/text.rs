//! The full listing (`--detail`): the matrix, every pair SOP class by SOP class, drift.

use std::fmt::Write as _;

use super::*;

/// The matrix and the details as text.
pub fn to_text(r: &DiffReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Compatibility matrix (rows: initiator AE, columns: acceptor AE; accepted/proposed contexts)\n"
    );
    let rows: Vec<&Endpoint> = r
        .endpoints
        .iter()
        .filter(|e| r.pairs.iter().any(|p| &p.initiator == *e))
        .collect();
    let cols: Vec<&Endpoint> = r
        .endpoints
        .iter()
        .filter(|e| r.pairs.iter().any(|p| &p.acceptor == *e))
        .collect();
    if rows.is_empty() {
        let _ = writeln!(o, "no initiator/acceptor pair has a SOP class in common");
    } else {
        let w0 = rows
            .iter()
            .map(|e| e.label().len())
            .max()
            .unwrap_or(0)
            .max(20);
        let cells = |row: &Endpoint, col: &Endpoint| match r.pair(row, col) {
            Some(p) => {
                let (a, n) = p.counts();
                format!("{} {a}/{n}", p.verdict.as_str())
            }
            None => "-".to_owned(),
        };
        let widths: Vec<usize> = cols
            .iter()
            .map(|c| {
                rows.iter()
                    .map(|rw| cells(rw, c).len())
                    .max()
                    .unwrap_or(1)
                    .max(c.label().len())
            })
            .collect();
        let _ = write!(o, "{:w0$}", "");
        for (c, w) in cols.iter().zip(&widths) {
            let _ = write!(o, "  {:w$}", c.label());
        }
        o.push('\n');
        for rw in &rows {
            let _ = write!(o, "{:w0$}", rw.label());
            for (c, w) in cols.iter().zip(&widths) {
                let _ = write!(o, "  {:w$}", cells(rw, c));
            }
            o.push('\n');
        }
    }
    for p in &r.pairs {
        let (a, n) = p.counts();
        let _ = writeln!(
            o,
            "\n{} -> {}: {} ({a}/{n} contexts accepted)",
            p.initiator.label(),
            p.acceptor.label(),
            p.verdict.as_str()
        );
        let pdu = |v: u32| {
            if v == 0 {
                "no limit stated".to_owned()
            } else {
                format!("{v} bytes")
            }
        };
        let _ = writeln!(
            o,
            "  max PDU: {} -> {}, {} -> {}",
            pdu(p.pdu_to_acceptor),
            p.acceptor.ae,
            pdu(p.pdu_to_initiator),
            p.initiator.ae
        );
        for x in &p.association {
            let _ = writeln!(o, "  {}: {}: {}", x.severity.as_str(), x.topic, x.message);
        }
        for c in &p.contexts {
            let roles = format!("{}->{}", c.initiator_role, c.initiator_role.peer());
            match (&c.transfer_syntax, &c.rejection) {
                (Some(ts), _) => {
                    let alt = if c.common_transfer_syntaxes.len() > 1 {
                        format!(" (common: {})", labels(&c.common_transfer_syntaxes))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "  {:<48} {roles}  accepted: {ts}{alt}",
                        c.sop_class.label()
                    );
                }
                (None, Some(why)) => {
                    let _ = writeln!(o, "  {:<48} {roles}  REJECTED: {why}", c.sop_class.label());
                }
                (None, None) => {}
            }
            for x in &c.issues {
                let _ = writeln!(
                    o,
                    "      {}: {}: {}",
                    x.severity.as_str(),
                    x.topic,
                    x.message
                );
            }
        }
    }
    for dr in &r.drift {
        let _ = writeln!(
            o,
            "\nAE {} in {} (claim) and {} (compared): {} difference(s)",
            dr.title,
            dr.claimed_by,
            dr.compared,
            dr.differences.len()
        );
        for x in &dr.differences {
            let _ = writeln!(o, "  {}: {}: {}", x.severity.as_str(), x.topic, x.message);
        }
    }
    let _ = writeln!(o, "\nAssumptions:");
    for a in &r.assumptions {
        let _ = writeln!(o, "  - {a}");
    }
    o
}
