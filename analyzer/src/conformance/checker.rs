//! The conformance checker's driver: keeps the per-association and cross-association
//! state and feeds every event to the rule families of [`super::rules`], which hold the
//! checks themselves.
//!
//! Each association's two AEs are matched to statements by AE title (and address, when the
//! AE lists `hosts`) when its A-ASSOCIATE-RQ is seen. Negotiation rules run on the RQ and
//! AC/RJ, data rules on every command and dataset peek, timing rules when a side aborts or
//! closes. Storage Commitment is followed across associations: C-STORE successes are
//! remembered by SOP instance UID, N-ACTION transactions by Transaction UID, both capped
//! and expiring in capture time, so a report minutes later on another association is
//! still matched and memory stays bounded.
//!
//! Findings are queued; take them with [`Checker::drain`] (or let [`super::Checked`] pass
//! them on). Within one association each rule reports a given difference once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;

use dicomtap_wire::assoc::{AssociateAccept, AssociateRequest, UserInformation};
use dicomtap_wire::dimse::field;
use dicomtap_wire::event::{CommandEvent, DatasetPeekEvent};
use dicomtap_wire::{EngineConfig, Event, EventKind, Side};

use super::rules::{association, commitment, data, negotiation, pdu_size, timing, transfer_syntax};
use super::{ConformanceFinding, Evidence, RuleId};
use crate::analysis::AnalysisSink;
use crate::capture::ConnectionInfo;
use crate::session::Session;
use crate::statement::{Ae, Statement, ae_title_eq};

/// Limits and tolerances of the checker.
#[derive(Debug, Clone)]
pub struct CheckerConfig {
    /// How long a C-STORE Success is remembered, waiting for a commitment report.
    pub store_memory_s: f64,
    /// Most C-STORE successes remembered (the oldest are forgotten first).
    pub max_stores: usize,
    /// Most Storage Commitment transactions waiting for their report.
    pub max_commitments: usize,
    /// How long a transaction is remembered waiting for its report (at least its claimed
    /// `max_wait_s`; past that it is reported overdue but still matched to a late report).
    pub commitment_memory_s: f64,
    /// An abort or close less than this long after the last PDU is not a timeout.
    pub min_timeout_gap_s: f64,
    /// Findings queued and not drained before further ones are dropped (counted).
    pub max_queue: usize,
    /// Distinct differences remembered per association (for reporting each once).
    pub max_keys_per_association: usize,
    /// Outstanding DIMSE requests tracked per association.
    pub max_outstanding: usize,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        CheckerConfig {
            store_memory_s: 86_400.0,
            max_stores: 100_000,
            max_commitments: 10_000,
            commitment_memory_s: 86_400.0,
            min_timeout_gap_s: 1.0,
            max_queue: 100_000,
            max_keys_per_association: 4096,
            max_outstanding: 10_000,
        }
    }
}
/// A matched AE: (statement index, AE index).
pub(crate) type Party = (usize, usize);

/// Findings a family found, reported together once it is done: (rule, key that makes
/// the difference once per association, claim, observed).
pub(crate) type Pending = Vec<(RuleId, String, String, String)>;

/// A DIMSE request waiting for its final response.
#[derive(Debug)]
pub(crate) struct Outstanding {
    pub(crate) ts_us: u64,
    pub(crate) sop_class: Option<String>,
    pub(crate) sop_instance: Option<String>,
}

/// Where an association is in its lifecycle, as far as the traffic showed it.
///
/// Out-of-order PDUs do not move it backwards: the first answer to the A-ASSOCIATE-RQ
/// decides between established and rejected, and once a side aborted or the stream
/// ended nothing changes any more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// No A-ASSOCIATE-RQ seen yet.
    #[default]
    Unopened,
    /// A-ASSOCIATE-RQ seen, not answered yet.
    Requested,
    /// A-ASSOCIATE-AC seen; `release_by`: who sent the first A-RELEASE-RQ.
    Established { release_by: Option<Side> },
    /// A-ASSOCIATE-RJ seen.
    Rejected,
    /// A-RELEASE-RP seen.
    Released,
    /// A side aborted, or the stream was closed or reset.
    Ended,
}

impl Lifecycle {
    fn requested(&mut self) {
        if *self == Lifecycle::Unopened {
            *self = Lifecycle::Requested;
        }
    }

    fn answered(&mut self, accepted: bool) {
        if matches!(self, Lifecycle::Unopened | Lifecycle::Requested) {
            *self = if accepted {
                Lifecycle::Established { release_by: None }
            } else {
                Lifecycle::Rejected
            };
        }
    }

    fn release_requested(&mut self, by: Side) {
        if let Lifecycle::Established { release_by } = self {
            release_by.get_or_insert(by);
        }
    }

    fn release_answered(&mut self) {
        if matches!(self, Lifecycle::Established { .. }) {
            *self = Lifecycle::Released;
        }
    }

    /// The association ended without release (abort, close or reset): a side gave up.
    fn end(&mut self) {
        *self = Lifecycle::Ended;
    }
}

/// Per-association state, dropped when the association ends.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) client: Option<SocketAddr>,
    pub(crate) server: Option<SocketAddr>,
    pub(crate) parties: [Option<Party>; 2],
    pub(crate) titles: [String; 2],
    pub(crate) rq: Option<AssociateRequest>,
    /// Accepted contexts: id -> (abstract syntax, transfer syntax).
    pub(crate) contexts: HashMap<u8, (String, Option<String>)>,
    pub(crate) max_length: [Option<u32>; 2],
    pub(crate) lifecycle: Lifecycle,
    /// The association is in the open association counts (released when it closes).
    pub(crate) counted: bool,
    pub(crate) last_pdu_ts: Option<u64>,
    pub(crate) outstanding: HashMap<(Side, u16), Outstanding>,
    pub(crate) collecting: HashMap<(Side, u8), commitment::Collect>,
    pub(crate) reported: HashSet<(RuleId, Side, String)>,
}

/// Evaluates the conformance rules; see the module documentation.
pub struct Checker {
    st: Vec<Statement>,
    cfg: CheckerConfig,
    conns: HashMap<u64, Conn>,
    g: Global,
    out: Out,
}

/// State across associations.
#[derive(Default)]
pub(crate) struct Global {
    pub(crate) open: association::OpenCounts,
    pub(crate) impl_seen: negotiation::ImplementationsSeen,
    pub(crate) commit: commitment::Memory,
    pub(crate) clock: u64,
    pub(crate) last_sweep: u64,
    pub(crate) seen: BTreeSet<usize>,
}

pub(crate) struct Out {
    pub(crate) source: Option<String>,
    queue: Vec<ConformanceFinding>,
    max_queue: usize,
    dropped: u64,
    total: u64,
}

impl Checker {
    /// A checker for these statements, with default limits.
    pub fn new(statements: Vec<Statement>) -> Self {
        Checker::with_config(statements, CheckerConfig::default())
    }

    pub fn with_config(statements: Vec<Statement>, cfg: CheckerConfig) -> Self {
        let max_queue = cfg.max_queue;
        Checker {
            st: statements,
            cfg,
            conns: HashMap::new(),
            g: Global::default(),
            out: Out {
                source: None,
                queue: Vec::new(),
                max_queue,
                dropped: 0,
                total: 0,
            },
        }
    }

    /// The engine configuration the checker needs: `base` with data set fragments emitted
    /// (Storage Commitment data sets are read from them).
    pub fn engine_config(base: EngineConfig) -> EngineConfig {
        EngineConfig {
            emit_data: true,
            ..base
        }
    }

    /// Names the capture or live source of the traffic that follows (for evidence).
    pub fn set_source(&mut self, name: impl Into<String>) {
        self.out.source = Some(name.into());
    }

    pub fn statements(&self) -> &[Statement] {
        &self.st
    }

    /// Device names of the statements whose AEs took part in at least one association.
    pub fn devices_seen(&self) -> Vec<String> {
        self.g
            .seen
            .iter()
            .filter_map(|&i| self.st.get(i).map(|s| s.device.name.clone()))
            .collect()
    }

    /// Findings produced so far and not yet drained.
    pub fn drain(&mut self) -> Vec<ConformanceFinding> {
        std::mem::take(&mut self.out.queue)
    }

    /// Findings dropped because the queue was not drained.
    pub fn dropped(&self) -> u64 {
        self.out.dropped
    }

    /// Findings produced in total.
    pub fn total(&self) -> u64 {
        self.out.total
    }

    /// Associations currently tracked.
    pub fn open_associations(&self) -> usize {
        self.conns.len()
    }

    /// Storage Commitment transactions waiting for their report, C-STORE successes
    /// remembered.
    pub fn pending(&self) -> (usize, usize) {
        self.g.commit.pending()
    }

    /// Feeds one engine event of connection `conn`.
    pub fn observe(&mut self, conn: &ConnectionInfo, e: &Event) {
        let id = conn.id.0;
        let c = self.conns.entry(id).or_insert_with(|| Conn {
            id,
            client: Some(conn.client),
            server: Some(conn.server),
            ..Conn::default()
        });
        let mut cx = Ctx {
            st: &self.st,
            cfg: &self.cfg,
            g: &mut self.g,
            out: &mut self.out,
        };
        cx.advance(e.ts_us);
        cx.event(c, e);
    }

    /// Moves the clock to `ts_us` (if later) as an event of that time would, for a caller
    /// that does not hand over the events no rule reads.
    pub fn advance_clock(&mut self, ts_us: u64) {
        let mut cx = Ctx {
            st: &self.st,
            cfg: &self.cfg,
            g: &mut self.g,
            out: &mut self.out,
        };
        cx.advance(ts_us);
    }

    /// The association of `conn` ended (its session is complete).
    pub fn end_association(&mut self, conn: &ConnectionInfo, session: &Session) {
        let id = conn.id.0;
        if let Some(mut c) = self.conns.remove(&id) {
            let mut cx = Ctx {
                st: &self.st,
                cfg: &self.cfg,
                g: &mut self.g,
                out: &mut self.out,
            };
            cx.advance(session.last_ts_us);
            cx.close(&mut c);
        }
    }

    /// End of all input: associations still open are released from the counts, and
    /// commitments whose claimed wait has passed (in capture time) are reported overdue.
    pub fn finish(&mut self) {
        let mut cx = Ctx {
            st: &self.st,
            cfg: &self.cfg,
            g: &mut self.g,
            out: &mut self.out,
        };
        for (_, mut c) in self.conns.drain() {
            cx.close(&mut c);
        }
        let now = cx.g.clock;
        cx.sweep(now);
    }
}

impl AnalysisSink for Checker {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        self.observe(conn, event);
    }

    fn session(&mut self, conn: &ConnectionInfo, session: Session) {
        self.end_association(conn, &session);
    }
}
/// What the families see of the checker while one event is evaluated.
pub(crate) struct Ctx<'a> {
    pub(crate) st: &'a [Statement],
    pub(crate) cfg: &'a CheckerConfig,
    pub(crate) g: &'a mut Global,
    pub(crate) out: &'a mut Out,
}

pub(crate) fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

pub(crate) fn us(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e6) as u64
    } else {
        0
    }
}

/// A UID for people: its keyword, or the private name the statement gives it, or itself.
pub(crate) fn label(st: Option<&Statement>, uid: &str) -> String {
    if let Some(k) = dicomtap_wire::uid::keyword(uid) {
        return k.to_string();
    }
    if let Some(name) = st
        .and_then(|s| s.private_uids.get(uid))
        .and_then(|p| p.name.as_deref())
    {
        return format!("{uid} ({name})");
    }
    uid.to_string()
}

pub(crate) fn labels(st: Option<&Statement>, uids: &[&str]) -> String {
    let v: Vec<String> = uids.iter().map(|u| label(st, u)).collect();
    format!("[{}]", v.join(", "))
}

impl<'a> Ctx<'a> {
    pub(crate) fn stmt(&self, p: Party) -> Option<&'a Statement> {
        self.st.get(p.0)
    }

    pub(crate) fn ae(&self, p: Party) -> Option<&'a Ae> {
        self.st.get(p.0).and_then(|s| s.ae.get(p.1))
    }

    pub(crate) fn party_ae(&self, c: &Conn, side: Side) -> Option<(Party, &'a Ae)> {
        let p = c.parties[side.index()]?;
        Some((p, self.ae(p)?))
    }

    pub(crate) fn evidence(&self, c: &Conn, e: &Event) -> Evidence {
        Evidence {
            source: self.out.source.clone(),
            association: c.id,
            client: c.client,
            server: c.server,
            from: Some(e.from),
            offset: Some(e.offset),
            ts_us: e.ts_us,
            ..Evidence::default()
        }
    }

    /// Reports `rule` against the AE on `side`, once per association and `key`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn report(
        &mut self,
        c: &mut Conn,
        side: Side,
        rule: RuleId,
        key: &str,
        claim: String,
        observed: String,
        evidence: Evidence,
    ) {
        let Some(p) = c.parties[side.index()] else {
            return;
        };
        if c.reported.len() >= self.cfg.max_keys_per_association {
            return;
        }
        if !c.reported.insert((rule, side, key.to_string())) {
            return;
        }
        self.emit_for(p, rule, claim, observed, evidence);
    }

    /// Reports what a family found, in the order it found it.
    pub(crate) fn report_all(&mut self, c: &mut Conn, side: Side, pending: Pending, ev: &Evidence) {
        for (rule, key, claim, observed) in pending {
            self.report(c, side, rule, &key, claim, observed, ev.clone());
        }
    }

    pub(crate) fn emit_for(
        &mut self,
        p: Party,
        rule: RuleId,
        claim: String,
        observed: String,
        evidence: Evidence,
    ) {
        let (Some(s), Some(ae)) = (self.stmt(p), self.ae(p)) else {
            return;
        };
        let f = ConformanceFinding {
            rule,
            severity: rule.severity(),
            device: s.device.name.clone(),
            ae: ae.title.clone(),
            claim,
            observed,
            evidence,
        };
        self.out.total += 1;
        if self.out.queue.len() >= self.out.max_queue {
            self.out.dropped += 1;
        } else {
            self.out.queue.push(f);
        }
    }

    /// Moves the capture clock; expires what is due at most once per second.
    fn advance(&mut self, ts: u64) {
        if ts > self.g.clock {
            self.g.clock = ts;
        }
        if self.g.clock >= self.g.last_sweep.saturating_add(1_000_000) {
            let now = self.g.clock;
            self.sweep(now);
        }
    }

    pub(crate) fn sweep(&mut self, now: u64) {
        self.g.last_sweep = now;
        self.expire_commitment_memory(now);
    }

    // -----------------------------------------------------------------------------------
    // Matching

    /// The statement AE for a wire title and address: a title-and-address match first,
    /// then a title match of an AE without hosts, then a title match whose hosts do not
    /// include the address (reported as ae-address-not-claimed). For the called AE
    /// (`called`), an AE whose `port` is the server's wins over one claiming another port,
    /// so that two acceptors of one title on one host are told apart by their ports.
    fn match_party(
        &self,
        title: &str,
        addr: Option<SocketAddr>,
        called: bool,
    ) -> Option<(Party, bool)> {
        let ip = addr.map(|a| a.ip());
        // (port agrees, host rank: 2 listed, 1 no hosts, 0 not listed); the first best.
        let mut best: Option<((bool, u8), Party)> = None;
        for (si, s) in self.st.iter().enumerate() {
            for (ai, a) in s.ae.iter().enumerate() {
                if !ae_title_eq(&a.title, title) {
                    continue;
                }
                let port_ok = !called
                    || match (a.port, addr) {
                        (Some(p), Some(addr)) => p == addr.port(),
                        _ => true,
                    };
                let host = if a.hosts.is_empty() {
                    1
                } else if a.matches_host(ip) {
                    2
                } else {
                    0
                };
                let rank = (port_ok, host);
                if best.is_none_or(|(r, _)| rank > r) {
                    best = Some((rank, (si, ai)));
                }
            }
        }
        best.map(|((_, host), p)| (p, host > 0))
    }

    // -----------------------------------------------------------------------------------
    // Events

    fn event(&mut self, c: &mut Conn, e: &Event) {
        match &e.kind {
            EventKind::AssociateRq(rq) => {
                self.touch(c, e);
                self.on_rq(c, e, rq);
            }
            EventKind::AssociateAc(ac) => {
                self.touch(c, e);
                self.on_ac(c, e, ac);
            }
            EventKind::AssociateRj(rj) => {
                self.touch(c, e);
                c.lifecycle.answered(false);
                self.association_rejected(c, e, rj);
            }
            EventKind::ReleaseRq => {
                self.touch(c, e);
                c.lifecycle.release_requested(e.from);
            }
            EventKind::ReleaseRp => {
                self.touch(c, e);
                c.lifecycle.release_answered();
            }
            EventKind::Abort(a) => {
                // Provider aborts for protocol errors are not timeouts.
                let timeout_like = a.source == 0 || a.reason == 0;
                if timeout_like {
                    self.gave_up(c, e, timing::GaveUp::Abort);
                }
                c.lifecycle.end();
                self.touch(c, e);
            }
            EventKind::StreamEnd { how } => {
                if matches!(
                    c.lifecycle,
                    Lifecycle::Requested | Lifecycle::Established { .. }
                ) {
                    self.gave_up(c, e, timing::GaveUp::Stream(*how));
                }
                c.lifecycle.end();
            }
            EventKind::PData(p) => {
                self.touch(c, e);
                self.pdata_size(c, e, p.pdu_length);
            }
            EventKind::UnknownPdu { .. } => self.touch(c, e),
            EventKind::Command(cmd) => {
                self.touch(c, e);
                self.on_command(c, e, cmd);
            }
            EventKind::DatasetPeek(p) => {
                self.touch(c, e);
                self.on_peek(c, e, p);
            }
            EventKind::DataFragment(f) => self.commitment_fragment(c, e, f),
            EventKind::DatasetEnd(_) => self.touch(c, e),
            EventKind::Finding(_)
            | EventKind::Gap { .. }
            | EventKind::Omitted { .. }
            | EventKind::Resync { .. } => {}
        }
    }

    fn touch(&mut self, c: &mut Conn, e: &Event) {
        c.last_pdu_ts = Some(c.last_pdu_ts.map_or(e.ts_us, |t| t.max(e.ts_us)));
    }

    fn on_rq(&mut self, c: &mut Conn, e: &Event, rq: &AssociateRequest) {
        c.lifecycle.requested();
        c.titles = [rq.calling_ae.clone(), rq.called_ae.clone()];
        c.max_length[Side::Requestor.index()] = rq.user_info.max_length;
        let req = self.match_party(&rq.calling_ae, c.client, false);
        let acc = self.match_party(&rq.called_ae, c.server, true);
        c.parties = [req.map(|m| m.0), acc.map(|m| m.0)];
        for p in c.parties.iter().flatten() {
            self.g.seen.insert(p.0);
        }
        let ev = self.evidence(c, e);
        self.addresses(c, rq, req, acc, &ev);
        self.security_and_roles(c, rq, &ev);
        self.common_user_info(c, e, Side::Requestor, &rq.user_info);
        // Contexts and user information proposed.
        if let Some((p, ae)) = self.party_ae(c, Side::Requestor) {
            let s = self.stmt(p);
            let mut pending = Vec::new();
            negotiation::contexts_proposed(ae, rq, &mut pending);
            for pc in &rq.contexts {
                let cap = negotiation::context_capability(
                    ae,
                    s,
                    Side::Requestor,
                    rq,
                    None,
                    pc,
                    &mut pending,
                );
                transfer_syntax::context_proposed(s, pc, cap, &mut pending);
            }
            negotiation::user_info_proposed(ae, s, rq, &mut pending);
            association::user_identity_proposed(ae, rq, &mut pending);
            self.report_all(c, Side::Requestor, pending, &ev);
        }
        c.rq = Some(rq.clone());
    }

    /// Checks shared by both sides' user information: Max Length and implementation ids.
    fn common_user_info(&mut self, c: &mut Conn, e: &Event, side: Side, ui: &UserInformation) {
        let Some((p, ae)) = self.party_ae(c, side) else {
            return;
        };
        let ev = self.evidence(c, e);
        let mut pending = Vec::new();
        pdu_size::max_length_advertised(ae, ui, &mut pending);
        self.implementation_ids(c, p, ae, ui, &mut pending);
        self.report_all(c, side, pending, &ev);
    }

    fn on_ac(&mut self, c: &mut Conn, e: &Event, ac: &AssociateAccept) {
        c.max_length[Side::Acceptor.index()] = ac.user_info.max_length;
        c.lifecycle.answered(true);
        for r in &ac.results {
            if r.accepted() {
                let abstract_syntax =
                    c.rq.as_ref()
                        .and_then(|rq| rq.contexts.iter().find(|pc| pc.id == r.id))
                        .map(|pc| pc.abstract_syntax.clone())
                        .unwrap_or_default();
                c.contexts
                    .insert(r.id, (abstract_syntax, r.transfer_syntax.clone()));
            }
        }
        self.count_association(c, e);
        let Some(rq) = c.rq.clone() else {
            return;
        };
        self.common_user_info(c, e, Side::Acceptor, &ac.user_info);
        let Some((p, ae)) = self.party_ae(c, Side::Acceptor) else {
            return;
        };
        let s = self.stmt(p);
        let ev = self.evidence(c, e);
        let mut pending = Vec::new();
        association::calling_ae_accepted(ae, &rq, &mut pending);
        negotiation::contexts_accepted(ae, ac, &mut pending);
        for r in &ac.results {
            let Some(pc) = rq.contexts.iter().find(|pc| pc.id == r.id) else {
                continue;
            };
            if !r.accepted() {
                negotiation::context_refused(ae, s, pc, r, &mut pending);
                continue;
            }
            let cap = negotiation::context_capability(
                ae,
                s,
                Side::Acceptor,
                &rq,
                Some(ac),
                pc,
                &mut pending,
            );
            transfer_syntax::context_accepted(s, pc, r, cap, &mut pending);
        }
        negotiation::user_info_answered(ae, s, &rq, ac, &c.contexts, &mut pending);
        association::user_identity_answered(ae, &rq, ac, &mut pending);
        self.report_all(c, Side::Acceptor, pending, &ev);
    }

    fn on_command(&mut self, c: &mut Conn, e: &Event, ce: &CommandEvent) {
        let cmd = &ce.command;
        if cmd.is_request() {
            if cmd.command_field == field::C_CANCEL_RQ {
                return;
            }
            if let Some(id) = cmd.message_id
                && c.outstanding.len() < self.cfg.max_outstanding
            {
                c.outstanding.insert(
                    (e.from, id),
                    Outstanding {
                        ts_us: e.ts_us,
                        sop_class: cmd
                            .sop_class()
                            .map(str::to_string)
                            .or_else(|| ce.abstract_syntax.clone()),
                        sop_instance: cmd.sop_instance().map(str::to_string),
                    },
                );
            }
            commitment::request_seen(c, e, ce);
            return;
        }
        // A response.
        let Some(status) = &cmd.status else { return };
        let request = cmd.responded_to.and_then(|id| {
            if status.class.is_final() {
                c.outstanding.remove(&(e.from.peer(), id))
            } else {
                None
            }
        });
        self.status_returned(c, e, ce, status, request.as_ref());
        self.store_answered(c, e, cmd, status, request.as_ref());
    }

    fn on_peek(&mut self, c: &mut Conn, e: &Event, pe: &DatasetPeekEvent) {
        let Some((p, ae)) = self.party_ae(c, e.from) else {
            return;
        };
        let s = self.stmt(p);
        let mut ev = self.evidence(c, e);
        ev.message_id = pe.message_id;
        ev.sop_instance = pe.peek.sop_instance_uid.clone();
        let mut pending = Vec::new();
        data::character_sets(ae, &pe.peek, &mut pending);
        self.private_creators(c, e.from, p, ae, &pe.peek, &mut pending);
        transfer_syntax::dataset_encoding(s, pe, &mut pending);
        self.report_all(c, e.from, pending, &ev);
    }

    /// The association is over: release its counts.
    fn close(&mut self, c: &mut Conn) {
        self.uncount_association(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_follows_the_first_answer_and_ends_for_good() {
        let mut l = Lifecycle::default();
        l.answered(true);
        assert_eq!(l, Lifecycle::Established { release_by: None });
        let mut l = Lifecycle::default();
        l.requested();
        assert_eq!(l, Lifecycle::Requested);
        l.answered(false);
        l.answered(true);
        assert_eq!(l, Lifecycle::Rejected, "the first answer decides");
        let mut l = Lifecycle::Requested;
        l.release_requested(Side::Requestor);
        l.answered(true);
        l.release_requested(Side::Acceptor);
        l.release_requested(Side::Requestor);
        assert_eq!(
            l,
            Lifecycle::Established {
                release_by: Some(Side::Acceptor)
            }
        );
        l.release_answered();
        assert_eq!(l, Lifecycle::Released);
        l.end();
        l.requested();
        l.answered(true);
        assert_eq!(l, Lifecycle::Ended);
    }
}
