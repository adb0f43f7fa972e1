//! How much of the event log one association may fill (docs/events.md, "Bounds").
//!
//! Whoever connects can make the engine talk: a stream of tiny P-DATA PDUs or an
//! A-ASSOCIATE-RQ with thousands of odd contexts gives one or two lines per few bytes.
//! Without a bound the log grew ~38 times faster than the traffic and rotation pushed
//! real recordings out. Per association:
//!
//! - findings of one kind (code, or conformance rule): the first [`FIRST_OF_A_KIND`] are
//!   logged with their evidence, the rest only counted;
//! - `p_data` lines of PDUs smaller than [`SMALL_PDU`] bytes: the first
//!   [`FIRST_OF_A_KIND`] are logged, the rest counted with their bytes;
//! - the contexts of an A-ASSOCIATE-RQ or -AC line: the first [`MAX_LOGGED_CONTEXTS`]
//!   (context ids are one byte; PS3.8 allows 128), the rest counted;
//! - the PDVs of a `p_data` line: the first [`MAX_LOGGED_PDVS`], the rest counted;
//! - all lines: at most [`BASE_LINES`] plus one per [`BYTES_PER_LINE`] bytes of traffic;
//!   beyond that wire events are counted, not logged (the proxy's own notices, a handful
//!   per association, always are).
//!
//! What was held back is told in one `events_suppressed` line before the association's
//! `closed` line. Metrics and conformance rules see every event regardless.

use std::collections::BTreeMap;

use dicomtap_wire::{Event, EventKind};

pub use crate::events::Suppressed;

/// Findings of one kind, and small `p_data` lines, logged per association (as many as
/// `dicomtap analyze` keeps with their evidence).
pub const FIRST_OF_A_KIND: u64 = dicomtap_analyzer::session::FIRST_OF_A_KIND;
/// P-DATA PDUs shorter than this (header included) are "small".
pub const SMALL_PDU: u32 = 1024;
/// Contexts listed in an A-ASSOCIATE-RQ or -AC line.
pub const MAX_LOGGED_CONTEXTS: usize = dicomtap_analyzer::session::MAX_CONTEXTS;
/// PDVs listed in a `p_data` line (real PDUs carry one or two).
pub const MAX_LOGGED_PDVS: usize = dicomtap_analyzer::text::MAX_LISTED_PDVS;
/// Lines any association may log whatever its traffic.
pub const BASE_LINES: u64 = 4096;
/// One more line allowed per this many bytes of traffic (both directions).
pub const BYTES_PER_LINE: u64 = 256;

/// Why a line was held back (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    RepeatedFinding,
    SmallPData,
    OverBudget,
}

impl Held {
    pub fn label(self) -> &'static str {
        match self {
            Held::RepeatedFinding => "repeated_finding",
            Held::SmallPData => "small_p_data",
            Held::OverBudget => "over_budget",
        }
    }
}

/// One association's budget.
#[derive(Debug, Default)]
pub struct EventBudget {
    seen: BTreeMap<String, u64>,
    small_p_data_logged: u64,
    traffic: u64,
    out: Suppressed,
}

impl EventBudget {
    pub fn new() -> Self {
        EventBudget::default()
    }

    /// `n` bytes of traffic went through (either direction).
    pub fn traffic(&mut self, n: u64) {
        self.traffic = self.traffic.saturating_add(n);
    }

    fn allowed_lines(&self) -> u64 {
        BASE_LINES.saturating_add(self.traffic / BYTES_PER_LINE)
    }

    fn over(&self) -> bool {
        self.out.lines_logged >= self.allowed_lines()
    }

    /// A finding of `kind` (a protocol finding code or a conformance rule): log it?
    pub fn finding(&mut self, kind: &str) -> Result<(), Held> {
        let n = match self.seen.get_mut(kind) {
            Some(n) => n,
            None => self.seen.entry(kind.to_string()).or_insert(0),
        };
        *n += 1;
        if *n > FIRST_OF_A_KIND {
            *self.out.findings.entry(kind.to_string()).or_insert(0) += 1;
            return Err(Held::RepeatedFinding);
        }
        self.line()
    }

    /// A wire event: log it?
    pub fn wire(&mut self, ev: &Event) -> Result<(), Held> {
        match &ev.kind {
            EventKind::Finding(f) => self.finding(f.code.id()),
            EventKind::PData(p) if p.pdu_length.saturating_add(6) < SMALL_PDU => {
                if self.small_p_data_logged >= FIRST_OF_A_KIND {
                    self.out.small_p_data += 1;
                    self.out.small_p_data_bytes += u64::from(p.pdu_length) + 6;
                    return Err(Held::SmallPData);
                }
                self.line()?;
                self.small_p_data_logged += 1;
                Ok(())
            }
            _ => self.line(),
        }
    }

    /// `ev` as logged: an A-ASSOCIATE-RQ or -AC with its first [`MAX_LOGGED_CONTEXTS`]
    /// contexts, a P-DATA-TF with its first [`MAX_LOGGED_PDVS`] PDVs (the rest counted in
    /// the summary).
    pub fn trim(&mut self, mut ev: Event) -> Event {
        match &mut ev.kind {
            EventKind::AssociateRq(rq) => {
                self.out.contexts_not_logged += cut_to(&mut rq.contexts, MAX_LOGGED_CONTEXTS);
            }
            EventKind::AssociateAc(ac) => {
                self.out.contexts_not_logged += cut_to(&mut ac.results, MAX_LOGGED_CONTEXTS);
            }
            EventKind::PData(p) => {
                self.out.pdvs_not_logged += cut_to(&mut p.pdvs, MAX_LOGGED_PDVS);
            }
            _ => {}
        }
        ev
    }

    fn line(&mut self) -> Result<(), Held> {
        if self.over() {
            self.out.over_budget += 1;
            return Err(Held::OverBudget);
        }
        self.out.lines_logged += 1;
        Ok(())
    }

    /// A line that is always logged (the proxy's own notices, the summary).
    pub fn notice(&mut self) {
        self.out.lines_logged += 1;
    }

    /// What was held back so far; `None` when nothing was, or when already taken.
    pub fn take_summary(&mut self) -> Option<Suppressed> {
        if self.out.is_empty() {
            return None;
        }
        let lines = self.out.lines_logged;
        let s = std::mem::take(&mut self.out);
        self.out.lines_logged = lines;
        Some(s)
    }

    /// Lines logged so far.
    pub fn lines_logged(&self) -> u64 {
        self.out.lines_logged
    }
}

/// Truncates `v` to `max`; how many were removed.
fn cut_to<T>(v: &mut Vec<T>, max: usize) -> u64 {
    let n = v.len().saturating_sub(max);
    v.truncate(max);
    n as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_wire::{Conversation, EngineConfig, Side};

    /// Feeds `bytes` as the requestor and returns the events.
    fn events(bytes: &[u8]) -> Vec<Event> {
        let mut conv = Conversation::new(EngineConfig::default());
        conv.feed(Side::Requestor, 0, bytes);
        let mut out = Vec::new();
        for _ in 0..10_000_000 {
            match conv.poll() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    #[test]
    fn tiny_p_data_floods_are_counted_not_logged() {
        // 100,000 P-DATA PDUs of 12 bytes, one 6-byte PDV each: the engine finds each of
        // them odd (no association, too short a PDV), one line and more per 12 bytes.
        let pdu = [0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 3];
        let flood: Vec<u8> = pdu
            .iter()
            .copied()
            .cycle()
            .take(pdu.len() * 100_000)
            .collect();
        let evs = events(&flood);
        assert!(evs.len() >= 100_000, "{} events", evs.len());
        let mut b = EventBudget::new();
        b.traffic(flood.len() as u64);
        let logged = evs.iter().filter(|e| b.wire(e).is_ok()).count() as u64;
        let s = b.take_summary().unwrap_or_default();
        assert!(logged <= 10 * FIRST_OF_A_KIND + 10, "{logged} lines logged");
        assert_eq!(s.small_p_data, 100_000 - FIRST_OF_A_KIND);
        assert_eq!(s.small_p_data_bytes, 12 * (100_000 - FIRST_OF_A_KIND));
        assert!(!s.findings.is_empty());
        assert_eq!(logged + s.total(), evs.len() as u64);
        assert_eq!(b.take_summary(), None);
    }

    #[test]
    fn the_line_budget_grows_with_the_traffic() {
        let mut b = EventBudget::new();
        let ev = Event {
            ts_us: 0,
            from: Side::Requestor,
            offset: 0,
            kind: EventKind::ReleaseRq,
        };
        let n = (0..BASE_LINES * 2).filter(|_| b.wire(&ev).is_ok()).count() as u64;
        assert_eq!(n, BASE_LINES);
        b.traffic(BYTES_PER_LINE * 100);
        let n = (0..1000).filter(|_| b.wire(&ev).is_ok()).count();
        assert_eq!(n, 100);
        let s = b.take_summary().unwrap_or_default();
        assert_eq!(s.over_budget, BASE_LINES + 900);
    }
}
