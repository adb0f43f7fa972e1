//! The conformance checker: evaluates the rules of [`super::rules`] live, event by event,
//! for every association whose AEs have a statement.
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

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use dicomtap_wire::assoc::{AssociateAccept, AssociateReject, AssociateRequest};
use dicomtap_wire::dimse::field;
use dicomtap_wire::event::{CommandEvent, DataFragment, DatasetPeekEvent};
use dicomtap_wire::status::StatusClass;
use dicomtap_wire::{EngineConfig, Event, EventKind, Side};

use super::commit::{self, STORAGE_COMMITMENT_PUSH_MODEL};
use super::{ConformanceFinding, Evidence, Related, RuleId};
use crate::analysis::AnalysisSink;
use crate::capture::ConnectionInfo;
use crate::session::Session;
use crate::statement::{
    Ae, Capability, CommonExtendedNegotiation, ExtendedNegotiation, ReportOn, Role, Statement,
    UserIdentityType, ae_title_eq,
};

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
type Party = (usize, usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AssocRole {
    Initiator,
    Acceptor,
}

#[derive(Debug)]
struct Outstanding {
    ts_us: u64,
    sop_class: Option<String>,
    sop_instance: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollectKind {
    Action,
    Report,
}

#[derive(Debug)]
struct Collect {
    kind: CollectKind,
    message_id: Option<u16>,
    offset: u64,
    bytes: Vec<u8>,
    overflow: bool,
}

/// Per-association state, dropped when the association ends.
#[derive(Debug, Default)]
struct Conn {
    id: u64,
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
    parties: [Option<Party>; 2],
    titles: [String; 2],
    rq: Option<AssociateRequest>,
    /// Accepted contexts: id -> (abstract syntax, transfer syntax).
    contexts: HashMap<u8, (String, Option<String>)>,
    max_length: [Option<u32>; 2],
    rq_seen: bool,
    established: bool,
    rejected: bool,
    counted: bool,
    release_rq_by: Option<Side>,
    released: bool,
    gave_up: bool,
    last_pdu_ts: Option<u64>,
    outstanding: HashMap<(Side, u16), Outstanding>,
    collecting: HashMap<(Side, u8), Collect>,
    reported: HashSet<(RuleId, Side, String)>,
}

#[derive(Debug)]
struct StoreRec {
    scp: Option<Party>,
    association: u64,
    message_id: Option<u16>,
    ts_us: u64,
    status: String,
}

#[derive(Debug, Clone, Copy)]
struct PendingCommit {
    /// The party whose claim sets the deadline and who is blamed when it passes.
    blamed: Option<Party>,
    scp: Option<Party>,
    max_wait_s: Option<f64>,
    association: u64,
    message_id: Option<u16>,
    ts_us: u64,
    instances: usize,
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
    /// The claimed wait passed and the overdue finding was made; the transaction is kept
    /// (until it expires) so that a late report is still checked.
    overdue_reported: bool,
}

/// Evaluates the conformance rules; see the module documentation.
pub struct Checker {
    st: Vec<Statement>,
    cfg: CheckerConfig,
    conns: HashMap<u64, Conn>,
    g: Global,
    out: Out,
}

#[derive(Default)]
struct Global {
    open: HashMap<(Party, AssocRole), u32>,
    impl_seen: HashMap<Party, (Option<String>, Option<String>, u64)>,
    stores: HashMap<String, StoreRec>,
    store_order: VecDeque<(String, u64)>,
    /// SOP instances each party received with a C-STORE Success (bounded by max_stores):
    /// what it sends of them later is relayed, not its own.
    received: HashSet<(Party, String)>,
    received_order: VecDeque<(Party, String)>,
    commits: HashMap<String, PendingCommit>,
    commit_order: VecDeque<(String, u64)>,
    clock: u64,
    last_sweep: u64,
    seen: BTreeSet<usize>,
}

struct Out {
    source: Option<String>,
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
        (self.g.commits.len(), self.g.stores.len())
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

struct Ctx<'a> {
    st: &'a [Statement],
    cfg: &'a CheckerConfig,
    g: &'a mut Global,
    out: &'a mut Out,
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

fn us(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e6) as u64
    } else {
        0
    }
}

/// A UID for people: its keyword, or the private name the statement gives it, or itself.
/// The first capability of `ae` for `sop` in one of `roles`; each role without one is a
/// `sop-class-not-claimed` finding (`did`: what the AE did with context `pc_id`).
fn claimed_capability<'a>(
    ae: &'a Ae,
    s: Option<&Statement>,
    sop: &str,
    roles: &[Role],
    did: &str,
    pc_id: u8,
    pending: &mut Vec<(RuleId, String, String, String)>,
) -> Option<&'a Capability> {
    let mut cap = None;
    for role in roles {
        match ae.capability(sop, *role) {
            Some(found) => {
                cap.get_or_insert(found);
            }
            None => pending.push((
                RuleId::SopClassNotClaimed,
                format!("{sop} {role}"),
                format!("no capability for {} as {role}", label(s, sop)),
                format!("{did} {} as {role} (context {pc_id})", label(s, sop)),
            )),
        }
    }
    cap
}

fn label(st: Option<&Statement>, uid: &str) -> String {
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

fn labels(st: Option<&Statement>, uids: &[&str]) -> String {
    let v: Vec<String> = uids.iter().map(|u| label(st, u)).collect();
    format!("[{}]", v.join(", "))
}

fn is_registered_ts(uid: &str) -> bool {
    dicomtap_wire::syntax::lookup(uid).is_some() || dicomtap_wire::uid::is_transfer_syntax(uid)
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// 0 = unlimited in async windows.
fn min0(a: u16, b: u16) -> u16 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// Differences between a claimed extended negotiation and the bytes sent.
fn ext_neg_diffs(claim: &ExtendedNegotiation, info: &[u8]) -> Vec<String> {
    let mut d = Vec::new();
    let byte = |i: usize| info.get(i).copied();
    let mut num = |name: &str, want: Option<u8>, i: usize| {
        if let Some(w) = want
            && byte(i) != Some(w)
        {
            d.push(format!(
                "{name} {} (claimed {w})",
                byte(i).map_or_else(|| "absent".to_string(), |b| b.to_string())
            ));
        }
    };
    if let Some(s) = &claim.storage {
        num("level_of_support", s.level_of_support, 0);
        num("digital_signature", s.digital_signature, 2);
        num("element_coercion", s.element_coercion, 4);
    }
    let mut flag = |name: &str, want: Option<bool>, i: usize| {
        if let Some(w) = want {
            let got = byte(i).map(|b| b != 0);
            if got != Some(w) {
                d.push(format!(
                    "{name} {} (claimed {w})",
                    got.map_or_else(|| "absent".to_string(), |b| b.to_string())
                ));
            }
        }
    };
    if let Some(f) = &claim.find {
        flag("relational", f.relational, 0);
        flag("combined_date_time", f.combined_date_time, 1);
        flag("fuzzy_person_name", f.fuzzy_person_name, 2);
        flag("timezone_adjust", f.timezone_adjust, 3);
    }
    if let Some(r) = &claim.retrieve {
        flag("relational", r.relational, 0);
    }
    d
}

/// Differences between a claimed and a sent SOP class common extended negotiation:
/// the service class, and related general SOP classes missing or extra (order is not
/// significant).
fn common_ext_neg_diffs(
    s: Option<&Statement>,
    claim: &CommonExtendedNegotiation,
    sent: &dicomtap_wire::assoc::CommonExtendedNegotiation,
) -> Vec<String> {
    let mut d = Vec::new();
    if claim.service_class != sent.service_class {
        d.push(format!(
            "service class {} (claimed {})",
            sent.service_class, claim.service_class
        ));
    }
    let extra: Vec<&str> = sent
        .related_general_sop_classes
        .iter()
        .filter(|u| {
            !claim
                .related_general_sop_classes
                .iter()
                .any(|c| &c.uid == *u)
        })
        .map(String::as_str)
        .collect();
    let missing: Vec<&str> = claim
        .related_general_sop_classes
        .iter()
        .filter(|c| !sent.related_general_sop_classes.contains(&c.uid))
        .map(|c| c.uid.as_str())
        .collect();
    if !extra.is_empty() {
        d.push(format!(
            "related general SOP classes {} not claimed",
            labels(s, &extra)
        ));
    }
    if !missing.is_empty() {
        d.push(format!(
            "claimed related general SOP classes {} not sent",
            labels(s, &missing)
        ));
    }
    d
}

impl<'a> Ctx<'a> {
    fn stmt(&self, p: Party) -> Option<&'a Statement> {
        self.st.get(p.0)
    }

    fn ae(&self, p: Party) -> Option<&'a Ae> {
        self.st.get(p.0).and_then(|s| s.ae.get(p.1))
    }

    fn party_ae(&self, c: &Conn, side: Side) -> Option<(Party, &'a Ae)> {
        let p = c.parties[side.index()]?;
        Some((p, self.ae(p)?))
    }

    fn evidence(&self, c: &Conn, e: &Event) -> Evidence {
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
    fn report(
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

    fn emit_for(
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

    fn sweep(&mut self, now: u64) {
        self.g.last_sweep = now;
        // C-STORE successes past their memory.
        let horizon = us(self.cfg.store_memory_s);
        while let Some((inst, ts)) = self.g.store_order.front().cloned() {
            let over = self.g.store_order.len() > self.cfg.max_stores;
            if now.saturating_sub(ts) < horizon && !over {
                break;
            }
            self.g.store_order.pop_front();
            if self.g.stores.get(&inst).is_some_and(|r| r.ts_us == ts) {
                self.g.stores.remove(&inst);
            }
        }
        // Commitments past their claimed wait are reported overdue once and kept, so that
        // a late report is still checked; they are forgotten after the commitment memory
        // (or the claimed wait, if longer).
        let mut due = Vec::new();
        let mut expired = Vec::new();
        for (txn, p) in &self.g.commits {
            let memory = p.max_wait_s.map_or(self.cfg.commitment_memory_s, |w| {
                w.max(self.cfg.commitment_memory_s)
            });
            if now > p.ts_us.saturating_add(us(memory)) {
                expired.push(txn.clone());
            }
            if !p.overdue_reported
                && let Some(wait) = p.max_wait_s
                && now > p.ts_us.saturating_add(us(wait))
            {
                due.push(txn.clone());
            }
        }
        due.sort();
        for txn in due {
            let Some(p) = self.g.commits.get_mut(&txn) else {
                continue;
            };
            p.overdue_reported = true;
            let p = *p;
            if let (Some(wait), Some(blamed)) = (p.max_wait_s, p.blamed) {
                let ev = Evidence {
                    source: self.out.source.clone(),
                    association: p.association,
                    client: p.client,
                    server: p.server,
                    message_id: p.message_id,
                    ts_us: p.ts_us,
                    ..Evidence::default()
                };
                let who = if p.scp == Some(blamed) {
                    "its"
                } else {
                    "the SCP's"
                };
                self.emit_for(
                    blamed,
                    RuleId::StorageCommitmentOverdue,
                    format!("storage_commitment.max_wait_s = {wait}"),
                    format!(
                        "no N-EVENT-REPORT for transaction {txn} ({} instance(s)) within {wait} s of the N-ACTION ({who} report is overdue)",
                        p.instances
                    ),
                    ev,
                );
            }
        }
        for txn in expired {
            self.g.commits.remove(&txn);
        }
        self.g
            .commit_order
            .retain(|(t, _)| self.g.commits.contains_key(t));
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
                self.on_rj(c, e, rj);
            }
            EventKind::ReleaseRq => {
                self.touch(c, e);
                c.release_rq_by.get_or_insert(e.from);
            }
            EventKind::ReleaseRp => {
                self.touch(c, e);
                c.released = true;
            }
            EventKind::Abort(a) => {
                // Provider aborts for protocol errors are not timeouts.
                let timeout_like = a.source == 0 || a.reason == 0;
                if timeout_like {
                    self.gave_up(c, e, "A-ABORT");
                }
                c.gave_up = true;
                self.touch(c, e);
            }
            EventKind::StreamEnd { how } => {
                if c.rq_seen && !c.released && !c.rejected && !c.gave_up {
                    let what = match how {
                        dicomtap_wire::StreamEnd::Close => "TCP close without release",
                        dicomtap_wire::StreamEnd::Reset => "TCP reset",
                    };
                    self.gave_up(c, e, what);
                }
                c.gave_up = true;
            }
            EventKind::PData(p) => {
                self.touch(c, e);
                self.on_pdata(c, e, p.pdu_length);
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
            EventKind::DataFragment(f) => self.on_fragment(c, e, f),
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
        c.rq_seen = true;
        c.titles = [rq.calling_ae.clone(), rq.called_ae.clone()];
        c.max_length[Side::Requestor.index()] = rq.user_info.max_length;
        let req = self.match_party(&rq.calling_ae, c.client, false);
        let acc = self.match_party(&rq.called_ae, c.server, true);
        c.parties = [req.map(|m| m.0), acc.map(|m| m.0)];
        for p in c.parties.iter().flatten() {
            self.g.seen.insert(p.0);
        }
        let ev = self.evidence(c, e);
        // Addresses.
        if let Some((p, host_ok)) = req
            && !host_ok
            && let Some(ae) = self.ae(p)
        {
            let claim = format!("hosts = {:?}", ae.hosts);
            let observed = format!(
                "AE title {} used by a requestor at {}",
                rq.calling_ae,
                c.client.map_or_else(|| "?".into(), |a| a.ip().to_string())
            );
            self.report(
                c,
                Side::Requestor,
                RuleId::AeAddressNotClaimed,
                "host",
                claim,
                observed,
                ev.clone(),
            );
        }
        if let Some((p, host_ok)) = acc
            && let Some(ae) = self.ae(p)
        {
            if !host_ok {
                let claim = format!("hosts = {:?}", ae.hosts);
                let observed = format!(
                    "AE title {} called at {}",
                    rq.called_ae,
                    c.server.map_or_else(|| "?".into(), |a| a.ip().to_string())
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AeAddressNotClaimed,
                    "host",
                    claim,
                    observed,
                    ev.clone(),
                );
            }
            if let (Some(port), Some(server)) = (ae.port, c.server)
                && server.port() != port
            {
                let claim = format!("port = {port}");
                let observed = format!(
                    "AE title {} called on port {}; if that is where this installation \
                     listens, set port = {} for AE {} in its statement",
                    rq.called_ae,
                    server.port(),
                    server.port(),
                    ae.title
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AeAddressNotClaimed,
                    "port",
                    claim,
                    observed,
                    ev.clone(),
                );
            }
        }
        for side in [Side::Requestor, Side::Acceptor] {
            let Some((_, ae)) = self.party_ae(c, side) else {
                continue;
            };
            let tls_required = ae.tls_required();
            let (role_ok, role_claim) = match side {
                Side::Requestor => (ae.initiator || !ae.acceptor, "initiator = false"),
                Side::Acceptor => (ae.acceptor || !ae.initiator, "acceptor = false"),
            };
            if tls_required {
                let observed = format!(
                    "plain DICOM A-ASSOCIATE-RQ {} -> {} (not TLS)",
                    rq.calling_ae, rq.called_ae
                );
                self.report(
                    c,
                    side,
                    RuleId::TlsClaimedPlaintextSeen,
                    "",
                    "tls.required = true".into(),
                    observed,
                    ev.clone(),
                );
            }
            if !role_ok {
                let observed = match side {
                    Side::Requestor => format!("initiated an association to {}", rq.called_ae),
                    Side::Acceptor => {
                        format!("was called by {} as association acceptor", rq.calling_ae)
                    }
                };
                self.report(
                    c,
                    side,
                    RuleId::AssociationRoleNotClaimed,
                    "",
                    role_claim.into(),
                    observed,
                    ev.clone(),
                );
            }
        }
        self.common_user_info(c, e, Side::Requestor, &rq.user_info);
        // Contexts proposed.
        if let Some((p, ae)) = self.party_ae(c, Side::Requestor) {
            let s = self.stmt(p);
            let mut pending = Vec::new();
            if let Some(max) = ae.max_presentation_contexts
                && rq.contexts.len() as u64 > u64::from(max)
            {
                pending.push((
                    RuleId::TooManyContexts,
                    String::new(),
                    format!("max_presentation_contexts = {max}"),
                    format!("proposed {} presentation contexts", rq.contexts.len()),
                ));
            }
            for pc in &rq.contexts {
                let sop = pc.abstract_syntax.as_str();
                let rs = rq
                    .user_info
                    .role_selections
                    .iter()
                    .find(|r| r.sop_class == sop);
                let roles: Vec<Role> = match rs {
                    Some(r) if r.scu || r.scp => {
                        let mut v = Vec::new();
                        if r.scu {
                            v.push(Role::Scu);
                        }
                        if r.scp {
                            v.push(Role::Scp);
                        }
                        v
                    }
                    _ => vec![Role::Scu],
                };
                let cap = claimed_capability(ae, s, sop, &roles, "proposed", pc.id, &mut pending);
                for ts in &pc.transfer_syntaxes {
                    if !is_registered_ts(ts) && !s.is_some_and(|s| s.is_private_uid(ts)) {
                        pending.push((
                            RuleId::PrivateTransferSyntaxUndocumented,
                            ts.clone(),
                            "private_uids: no entry for this UID".into(),
                            format!(
                                "proposed unregistered transfer syntax {ts} for {} (context {})",
                                label(s, sop),
                                pc.id
                            ),
                        ));
                    }
                }
                if let Some(cap) = cap {
                    let unclaimed: Vec<&str> = pc
                        .transfer_syntaxes
                        .iter()
                        .filter(|t| !cap.has_transfer_syntax(t))
                        .map(String::as_str)
                        .collect();
                    if !unclaimed.is_empty() {
                        let claimed: Vec<&str> = cap
                            .transfer_syntaxes
                            .iter()
                            .map(|t| t.uid.as_str())
                            .collect();
                        pending.push((
                            RuleId::TransferSyntaxNotClaimed,
                            format!("{sop} {}", unclaimed.join(",")),
                            format!(
                                "transfer_syntaxes = {} for {} {}",
                                labels(s, &claimed),
                                label(s, sop),
                                cap.role
                            ),
                            format!(
                                "proposed {} for {} (context {})",
                                labels(s, &unclaimed),
                                label(s, sop),
                                pc.id
                            ),
                        ));
                    }
                }
            }
            // Role selection and extended negotiation sent.
            for r in &rq.user_info.role_selections {
                let claim = ae
                    .capability
                    .iter()
                    .filter(|cap| cap.sop_class.uid == r.sop_class)
                    .find_map(|cap| cap.role_selection);
                let bad = match claim {
                    None => Some("none".to_string()),
                    Some(cl) if (cl.scu, cl.scp) != (r.scu, r.scp) => {
                        Some(format!("{{ scu = {}, scp = {} }}", cl.scu, cl.scp))
                    }
                    Some(_) => None,
                };
                if let Some(cl) = bad {
                    pending.push((
                        RuleId::RoleSelectionDiffers,
                        r.sop_class.clone(),
                        format!("role_selection for {} = {cl}", label(s, &r.sop_class)),
                        format!(
                            "proposed role selection scu = {}, scp = {} for {}",
                            r.scu,
                            r.scp,
                            label(s, &r.sop_class)
                        ),
                    ));
                }
            }
            let mut proposed_classes: Vec<&str> = rq
                .contexts
                .iter()
                .map(|pc| pc.abstract_syntax.as_str())
                .collect();
            proposed_classes.sort_unstable();
            proposed_classes.dedup();
            for sop in &proposed_classes {
                let claim = ae
                    .capability
                    .iter()
                    .filter(|cap| cap.sop_class.uid == *sop)
                    .find_map(|cap| cap.role_selection);
                if let Some(cl) = claim
                    && !rq
                        .user_info
                        .role_selections
                        .iter()
                        .any(|r| r.sop_class == *sop)
                {
                    pending.push((
                        RuleId::RoleSelectionDiffers,
                        (*sop).to_string(),
                        format!(
                            "role_selection for {} = {{ scu = {}, scp = {} }}",
                            label(s, sop),
                            cl.scu,
                            cl.scp
                        ),
                        format!("no role selection proposed for {}", label(s, sop)),
                    ));
                }
                let ext_claim = ae
                    .capabilities_for(sop, Role::Scu)
                    .chain(ae.capability.iter().filter(|cap| cap.sop_class.uid == *sop))
                    .find_map(|cap| cap.extended_negotiation);
                let sent = rq
                    .user_info
                    .extended_negotiation
                    .iter()
                    .find(|x| x.sop_class == *sop);
                match (ext_claim, sent) {
                    (None, Some(x)) => pending.push((
                        RuleId::ExtendedNegotiationDiffers,
                        (*sop).to_string(),
                        format!("extended_negotiation for {}: none", label(s, sop)),
                        format!(
                            "proposed extended negotiation {} for {}",
                            x.info,
                            label(s, sop)
                        ),
                    )),
                    (Some(cl), None) if cl != ExtendedNegotiation::default() => pending.push((
                        RuleId::ExtendedNegotiationDiffers,
                        (*sop).to_string(),
                        format!("extended_negotiation for {} = {cl}", label(s, sop)),
                        format!("no extended negotiation proposed for {}", label(s, sop)),
                    )),
                    (Some(cl), Some(x)) => {
                        let d = ext_neg_diffs(&cl, &hex_bytes(&x.info));
                        if !d.is_empty() {
                            pending.push((
                                RuleId::ExtendedNegotiationDiffers,
                                (*sop).to_string(),
                                format!("extended_negotiation for {} = {cl}", label(s, sop)),
                                format!("proposed {} for {}", d.join(", "), label(s, sop)),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            // SOP class common extended negotiation (0x57): only the requestor sends it.
            let mut common_classes: Vec<&str> = proposed_classes.clone();
            common_classes.extend(
                rq.user_info
                    .common_extended_negotiation
                    .iter()
                    .map(|x| x.sop_class.as_str()),
            );
            common_classes.sort_unstable();
            common_classes.dedup();
            for sop in &common_classes {
                let claim = ae
                    .capabilities_for(sop, Role::Scu)
                    .chain(ae.capability.iter().filter(|cap| cap.sop_class.uid == *sop))
                    .find_map(|cap| cap.common_extended_negotiation.as_ref());
                let sent = rq
                    .user_info
                    .common_extended_negotiation
                    .iter()
                    .find(|x| x.sop_class == *sop);
                let key = format!("{sop} common");
                let shown = |c: &CommonExtendedNegotiation| {
                    let related: Vec<&str> = c
                        .related_general_sop_classes
                        .iter()
                        .map(|u| u.uid.as_str())
                        .collect();
                    format!(
                        "common_extended_negotiation for {} = {{ service_class = {}, related_general_sop_classes = {} }}",
                        label(s, sop),
                        c.service_class,
                        labels(s, &related)
                    )
                };
                match (claim, sent) {
                    (None, Some(x)) => {
                        let related: Vec<&str> = x
                            .related_general_sop_classes
                            .iter()
                            .map(String::as_str)
                            .collect();
                        pending.push((
                            RuleId::ExtendedNegotiationDiffers,
                            key,
                            format!("common_extended_negotiation for {}: none", label(s, sop)),
                            format!(
                                "proposed common extended negotiation for {}: service class {}, related general SOP classes {}",
                                label(s, sop),
                                x.service_class,
                                labels(s, &related)
                            ),
                        ));
                    }
                    (Some(cl), None) => pending.push((
                        RuleId::ExtendedNegotiationDiffers,
                        key,
                        shown(cl),
                        format!(
                            "no common extended negotiation proposed for {}",
                            label(s, sop)
                        ),
                    )),
                    (Some(cl), Some(x)) => {
                        let d = common_ext_neg_diffs(s, cl, x);
                        if !d.is_empty() {
                            pending.push((
                                RuleId::ExtendedNegotiationDiffers,
                                key,
                                shown(cl),
                                format!(
                                    "proposed common extended negotiation for {} with {}",
                                    label(s, sop),
                                    d.join(", ")
                                ),
                            ));
                        }
                    }
                    (None, None) => {}
                }
            }
            // Asynchronous operations window.
            let eff = |w: Option<(u16, u16)>| w.unwrap_or((1, 1));
            let claim = ae.async_window.map(|w| (w.invoked, w.performed));
            if eff(rq.user_info.async_window) != eff(claim) {
                pending.push((
                    RuleId::AsyncWindowDiffers,
                    String::new(),
                    claim.map_or_else(
                        || "async_window: not negotiated".to_string(),
                        |(i, p)| format!("async_window = {{ invoked = {i}, performed = {p} }}"),
                    ),
                    rq.user_info.async_window.map_or_else(
                        || "no asynchronous operations window proposed".to_string(),
                        |(i, p)| format!("proposed invoked = {i}, performed = {p}"),
                    ),
                ));
            }
            // User identity.
            if let Some(ui) = &rq.user_info.user_identity {
                let t = UserIdentityType::from_code(ui.identity_type);
                if !t.is_some_and(|t| ae.user_identity.contains(&t)) {
                    pending.push((
                        RuleId::UserIdentityDiffers,
                        ui.identity_type.to_string(),
                        user_identity_claim(ae),
                        format!(
                            "sent user identity of type {} ({})",
                            ui.identity_type, ui.identity_type_name
                        ),
                    ));
                }
            }
            for (rule, key, claim, observed) in pending {
                self.report(c, Side::Requestor, rule, &key, claim, observed, ev.clone());
            }
        }
        c.rq = Some(rq.clone());
    }

    /// Checks shared by both sides' user information: Max Length and implementation ids.
    fn common_user_info(
        &mut self,
        c: &mut Conn,
        e: &Event,
        side: Side,
        ui: &dicomtap_wire::assoc::UserInformation,
    ) {
        let Some((p, ae)) = self.party_ae(c, side) else {
            return;
        };
        let ev = self.evidence(c, e);
        let mut pending = Vec::new();
        if let Some(claim) = ae.max_pdu_receive
            && ui.max_length != Some(claim)
        {
            pending.push((
                RuleId::MaxPduAdvertisedDiffers,
                String::new(),
                format!("max_pdu_receive = {claim}"),
                ui.max_length.map_or_else(
                    || "no Max Length item sent".to_string(),
                    |v| format!("advertised Max Length {v}"),
                ),
            ));
        }
        let seen = self.g.impl_seen.get(&p).cloned();
        for (rule, claim, observed, first) in [
            (
                RuleId::ImplementationUidChanged,
                ae.implementation_class_uid.clone(),
                ui.implementation_class_uid.clone(),
                seen.as_ref().map(|s| (s.0.clone(), s.2)),
            ),
            (
                RuleId::ImplementationVersionChanged,
                ae.implementation_version_name.clone(),
                ui.implementation_version_name.clone(),
                seen.as_ref().map(|s| (s.1.clone(), s.2)),
            ),
        ] {
            let what = if rule == RuleId::ImplementationUidChanged {
                ("implementation_class_uid", "Implementation Class UID")
            } else {
                ("implementation_version_name", "Implementation Version Name")
            };
            let shown = |v: &Option<String>| {
                v.as_deref()
                    .map_or_else(|| "none".to_string(), |v| format!("{v:?}"))
            };
            match (claim, first) {
                (Some(cl), _) if observed.as_deref() != Some(cl.as_str()) => pending.push((
                    rule,
                    observed.clone().unwrap_or_default(),
                    format!("{} = {cl:?}", what.0),
                    format!("sent {} {}", what.1, shown(&observed)),
                )),
                (None, Some((prev, assoc))) if prev != observed => pending.push((
                    rule,
                    observed.clone().unwrap_or_default(),
                    format!(
                        "{}: not stated; first seen {} (association #{assoc})",
                        what.0,
                        shown(&prev)
                    ),
                    format!("sent {} {}", what.1, shown(&observed)),
                )),
                _ => {}
            }
        }
        self.g.impl_seen.entry(p).or_insert((
            ui.implementation_class_uid.clone(),
            ui.implementation_version_name.clone(),
            c.id,
        ));
        for (rule, key, claim, observed) in pending {
            self.report(c, side, rule, &key, claim, observed, ev.clone());
        }
    }

    fn on_ac(&mut self, c: &mut Conn, e: &Event, ac: &AssociateAccept) {
        c.max_length[Side::Acceptor.index()] = ac.user_info.max_length;
        c.established = true;
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
        // Association counts.
        if !c.counted {
            c.counted = true;
            for (side, role) in [
                (Side::Requestor, AssocRole::Initiator),
                (Side::Acceptor, AssocRole::Acceptor),
            ] {
                let Some(p) = c.parties[side.index()] else {
                    continue;
                };
                let n = {
                    let n = self.g.open.entry((p, role)).or_insert(0);
                    *n += 1;
                    *n
                };
                let claim = self.ae(p).and_then(|ae| match role {
                    AssocRole::Initiator => ae.max_associations.initiator,
                    AssocRole::Acceptor => ae.max_associations.acceptor,
                });
                if let Some(max) = claim
                    && n > max
                {
                    let (k, what) = match role {
                        AssocRole::Initiator => ("initiator", "initiated"),
                        AssocRole::Acceptor => ("acceptor", "accepted"),
                    };
                    let ev = self.evidence(c, e);
                    self.report(
                        c,
                        side,
                        RuleId::MaxAssociationsExceeded,
                        k,
                        format!("max_associations.{k} = {max}"),
                        format!("{n} simultaneous associations {what}"),
                        ev,
                    );
                }
            }
        }
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
        if !ae.accepts_calling(&rq.calling_ae) {
            pending.push((
                RuleId::CallingAeNotAllowedAccepted,
                rq.calling_ae.clone(),
                format!(
                    "accept_calling_ae_titles = {:?}",
                    ae.accept_calling_ae_titles.clone().unwrap_or_default()
                ),
                format!("accepted an association from calling AE {}", rq.calling_ae),
            ));
        }
        let accepted = ac.results.iter().filter(|r| r.accepted()).count();
        if let Some(max) = ae.max_presentation_contexts
            && accepted as u64 > u64::from(max)
        {
            pending.push((
                RuleId::TooManyContexts,
                String::new(),
                format!("max_presentation_contexts = {max}"),
                format!("accepted {accepted} presentation contexts"),
            ));
        }
        for r in &ac.results {
            let Some(pc) = rq.contexts.iter().find(|pc| pc.id == r.id) else {
                continue;
            };
            let sop = pc.abstract_syntax.as_str();
            if !r.accepted() {
                if let Some(cap) = ae.capability(sop, Role::Scp) {
                    let claimed: Vec<&str> = pc
                        .transfer_syntaxes
                        .iter()
                        .filter(|t| cap.has_transfer_syntax(t))
                        .map(String::as_str)
                        .collect();
                    if !claimed.is_empty() {
                        pending.push((
                            RuleId::SopClassClaimedButRefused,
                            sop.to_string(),
                            format!(
                                "capability {} SCP with transfer_syntaxes including {}",
                                label(s, sop),
                                labels(s, &claimed)
                            ),
                            format!(
                                "refused context {} ({}): {}",
                                pc.id,
                                label(s, sop),
                                r.result_name
                            ),
                        ));
                    }
                }
                continue;
            }
            // The acceptor's role: SCP unless role selection made it the SCU.
            let reply = ac
                .user_info
                .role_selections
                .iter()
                .find(|x| x.sop_class == sop);
            let proposed_rs = rq
                .user_info
                .role_selections
                .iter()
                .any(|x| x.sop_class == sop);
            let roles: Vec<Role> = match reply {
                Some(x) if proposed_rs && (x.scu || x.scp) => {
                    let mut v = Vec::new();
                    if x.scu {
                        v.push(Role::Scp);
                    }
                    if x.scp {
                        v.push(Role::Scu);
                    }
                    v
                }
                _ => vec![Role::Scp],
            };
            let cap = claimed_capability(ae, s, sop, &roles, "accepted", pc.id, &mut pending);
            let Some(ts) = r.transfer_syntax.as_deref() else {
                continue;
            };
            if !is_registered_ts(ts) && !s.is_some_and(|s| s.is_private_uid(ts)) {
                pending.push((
                    RuleId::PrivateTransferSyntaxUndocumented,
                    ts.to_string(),
                    "private_uids: no entry for this UID".into(),
                    format!(
                        "accepted unregistered transfer syntax {ts} for {} (context {})",
                        label(s, sop),
                        pc.id
                    ),
                ));
            }
            let Some(cap) = cap else { continue };
            if !cap.has_transfer_syntax(ts) {
                let claimed: Vec<&str> = cap
                    .transfer_syntaxes
                    .iter()
                    .map(|t| t.uid.as_str())
                    .collect();
                pending.push((
                    RuleId::TransferSyntaxNotClaimed,
                    format!("{sop} {ts}"),
                    format!(
                        "transfer_syntaxes = {} for {} {}",
                        labels(s, &claimed),
                        label(s, sop),
                        cap.role
                    ),
                    format!(
                        "chose {} for {} (context {})",
                        label(s, ts),
                        label(s, sop),
                        pc.id
                    ),
                ));
            }
            if let Some(best) = cap
                .preferred_transfer_syntaxes
                .iter()
                .find(|p| pc.transfer_syntaxes.contains(&p.uid))
                && best.uid != ts
            {
                let preferred: Vec<&str> = cap
                    .preferred_transfer_syntaxes
                    .iter()
                    .map(|t| t.uid.as_str())
                    .collect();
                let proposed: Vec<&str> = pc.transfer_syntaxes.iter().map(String::as_str).collect();
                pending.push((
                    RuleId::AcceptorPreferenceIgnored,
                    format!("{sop} {ts}"),
                    format!(
                        "preferred_transfer_syntaxes = {} for {}",
                        labels(s, &preferred),
                        label(s, sop)
                    ),
                    format!(
                        "chose {} for {} although {} was proposed (proposed {}, context {})",
                        label(s, ts),
                        label(s, sop),
                        label(s, &best.uid),
                        labels(s, &proposed),
                        pc.id
                    ),
                ));
            }
        }
        // Role selection replies.
        for x in &ac.user_info.role_selections {
            let claim = ae
                .capability
                .iter()
                .filter(|cap| cap.sop_class.uid == x.sop_class)
                .find_map(|cap| cap.role_selection);
            let bad = match claim {
                Some(cl) => (x.scu && !cl.scu) || (x.scp && !cl.scp),
                None => {
                    (x.scu && ae.capability(&x.sop_class, Role::Scp).is_none())
                        || (x.scp && ae.capability(&x.sop_class, Role::Scu).is_none())
                }
            };
            if bad {
                pending.push((
                    RuleId::RoleSelectionDiffers,
                    x.sop_class.clone(),
                    claim.map_or_else(
                        || {
                            format!(
                                "role_selection for {}: none; capabilities {}",
                                label(s, &x.sop_class),
                                roles_claimed(ae, &x.sop_class)
                            )
                        },
                        |cl| {
                            format!(
                                "role_selection for {} = {{ scu = {}, scp = {} }}",
                                label(s, &x.sop_class),
                                cl.scu,
                                cl.scp
                            )
                        },
                    ),
                    format!(
                        "accepted role selection scu = {}, scp = {} for {}",
                        x.scu,
                        x.scp,
                        label(s, &x.sop_class)
                    ),
                ));
            }
        }
        // Extended negotiation replies (only to what was proposed).
        for prop in &rq.user_info.extended_negotiation {
            let sop = prop.sop_class.as_str();
            if !c.contexts.values().any(|(a, _)| a == sop) {
                continue;
            }
            let claim = ae
                .capabilities_for(sop, Role::Scp)
                .chain(ae.capability.iter().filter(|cap| cap.sop_class.uid == sop))
                .find_map(|cap| cap.extended_negotiation);
            let reply = ac
                .user_info
                .extended_negotiation
                .iter()
                .find(|x| x.sop_class == sop);
            match (claim, reply) {
                (None, Some(x)) => pending.push((
                    RuleId::ExtendedNegotiationDiffers,
                    sop.to_string(),
                    format!("extended_negotiation for {}: none", label(s, sop)),
                    format!(
                        "answered extended negotiation {} for {}",
                        x.info,
                        label(s, sop)
                    ),
                )),
                (Some(cl), None) if cl != ExtendedNegotiation::default() => pending.push((
                    RuleId::ExtendedNegotiationDiffers,
                    sop.to_string(),
                    format!("extended_negotiation for {} = {cl}", label(s, sop)),
                    format!(
                        "did not answer the extended negotiation proposed for {}",
                        label(s, sop)
                    ),
                )),
                (Some(cl), Some(x)) => {
                    let d = ext_neg_diffs(&cl, &hex_bytes(&x.info));
                    if !d.is_empty() {
                        pending.push((
                            RuleId::ExtendedNegotiationDiffers,
                            sop.to_string(),
                            format!("extended_negotiation for {} = {cl}", label(s, sop)),
                            format!("answered {} for {}", d.join(", "), label(s, sop)),
                        ));
                    }
                }
                _ => {}
            }
        }
        // Asynchronous operations window reply.
        let eff = |w: Option<(u16, u16)>| w.unwrap_or((1, 1));
        let claim = ae.async_window.map(|w| (w.invoked, w.performed));
        let expected = match (rq.user_info.async_window, claim) {
            (None, _) => None,
            (Some(_), None) => None,
            (Some((pi, pp)), Some((ci, cp))) => Some((min0(pi, ci), min0(pp, cp))),
        };
        if eff(ac.user_info.async_window) != eff(expected)
            || (rq.user_info.async_window.is_none() && ac.user_info.async_window.is_some())
        {
            pending.push((
                RuleId::AsyncWindowDiffers,
                String::new(),
                claim.map_or_else(
                    || "async_window: not negotiated".to_string(),
                    |(i, p)| format!("async_window = {{ invoked = {i}, performed = {p} }}"),
                ),
                format!(
                    "answered {} to a proposal of {}",
                    ac.user_info.async_window.map_or_else(
                        || "nothing".to_string(),
                        |(i, p)| format!("invoked = {i}, performed = {p}")
                    ),
                    rq.user_info.async_window.map_or_else(
                        || "nothing".to_string(),
                        |(i, p)| format!("invoked = {i}, performed = {p}")
                    )
                ),
            ));
        }
        // User identity response.
        if ac.user_info.user_identity_response_length.is_some() && ae.user_identity.is_empty() {
            pending.push((
                RuleId::UserIdentityDiffers,
                "response".into(),
                "user_identity: none".into(),
                "sent a user identity server response".into(),
            ));
        }
        // A positive response requested for a type it claims, the association accepted,
        // and no response: the identity was not confirmed (PS3.7 D.3.3.7).
        if let Some(ui) = &rq.user_info.user_identity
            && ui.positive_response_requested
            && ac.user_info.user_identity_response_length.is_none()
            && UserIdentityType::from_code(ui.identity_type)
                .is_some_and(|t| ae.user_identity.contains(&t))
        {
            pending.push((
                RuleId::UserIdentityDiffers,
                "no-response".into(),
                user_identity_claim(ae),
                format!(
                    "accepted user identity of type {} ({}) with a positive response requested, without a response",
                    ui.identity_type, ui.identity_type_name
                ),
            ));
        }
        for (rule, key, claim, observed) in pending {
            self.report(c, Side::Acceptor, rule, &key, claim, observed, ev.clone());
        }
    }

    fn on_rj(&mut self, c: &mut Conn, e: &Event, rj: &AssociateReject) {
        c.rejected = true;
        let Some((p, ae)) = self.party_ae(c, Side::Acceptor) else {
            return;
        };
        let ev = self.evidence(c, e);
        let calling = c.titles[0].clone();
        let called = c.titles[1].clone();
        match (rj.source, rj.reason) {
            (1, 3) if ae.accepts_calling(&calling) => {
                let claim = ae.accept_calling_ae_titles.as_ref().map_or_else(
                    || "accept_calling_ae_titles: any".to_string(),
                    |l| format!("accept_calling_ae_titles = {l:?}"),
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AssociationRejectedForAllowedAe,
                    "3",
                    claim,
                    format!("rejected calling AE {calling}: {}", rj.description),
                    ev,
                );
            }
            // Some acceptors (DCMTK dcmqrscp) answer a calling AE missing from their
            // access list with reason 7: a rejection of a title the statement does not
            // allow conforms whatever the reason code.
            (1, 7) if ae_title_eq(&ae.title, &called) && ae.accepts_calling(&calling) => {
                let claim = ae.accept_calling_ae_titles.as_ref().map_or_else(
                    || format!("title = {:?}, accept_calling_ae_titles: any", ae.title),
                    |l| format!("title = {:?}, accept_calling_ae_titles = {l:?}", ae.title),
                );
                self.report(
                    c,
                    Side::Acceptor,
                    RuleId::AssociationRejectedForAllowedAe,
                    "7",
                    claim,
                    format!(
                        "rejected called AE {called} (calling AE {calling}): {}",
                        rj.description
                    ),
                    ev,
                );
            }
            (3, 2) => {
                let open = self
                    .g
                    .open
                    .get(&(p, AssocRole::Acceptor))
                    .copied()
                    .unwrap_or(0);
                if let Some(max) = ae.max_associations.acceptor
                    && open < max
                {
                    self.report(
                        c,
                        Side::Acceptor,
                        RuleId::LocalLimitBelowClaim,
                        "",
                        format!("max_associations.acceptor = {max}"),
                        format!("rejected with local-limit-exceeded while {open} association(s) were open to it in the traffic seen"),
                        ev,
                    );
                }
            }
            _ => {}
        }
    }

    fn on_pdata(&mut self, c: &mut Conn, e: &Event, len: u32) {
        let Some((_, ae)) = self.party_ae(c, e.from) else {
            return;
        };
        let own = ae.max_pdu_send;
        let ev = self.evidence(c, e);
        if let Some(max) = c.max_length[e.from.peer().index()]
            && max != 0
            && len > max
        {
            self.report(
                c,
                e.from,
                RuleId::PduExceedsPeerMax,
                "",
                "P-DATA-TF no larger than the peer's Max Length".into(),
                format!(
                    "sent a P-DATA-TF of {len} bytes; the {} advertised Max Length {max}",
                    e.from.peer()
                ),
                ev.clone(),
            );
        }
        if let Some(max) = own
            && max != 0
            && len > max
        {
            self.report(
                c,
                e.from,
                RuleId::PduExceedsClaimedMaxSend,
                "",
                format!("max_pdu_send = {max}"),
                format!("sent a P-DATA-TF of {len} bytes"),
                ev,
            );
        }
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
            let commitment =
                cmd.sop_class() == Some(STORAGE_COMMITMENT_PUSH_MODEL) && cmd.has_dataset;
            let kind = match cmd.command_field {
                field::N_ACTION_RQ if commitment && cmd.action_type_id == Some(1) => {
                    Some(CollectKind::Action)
                }
                field::N_EVENT_REPORT_RQ
                    if commitment && matches!(cmd.event_type_id, Some(1 | 2)) =>
                {
                    Some(CollectKind::Report)
                }
                _ => None,
            };
            if let Some(kind) = kind {
                c.collecting.insert(
                    (e.from, ce.pc_id),
                    Collect {
                        kind,
                        message_id: cmd.message_id,
                        offset: e.offset,
                        bytes: Vec::new(),
                        overflow: false,
                    },
                );
            }
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
        let sop_class = cmd
            .sop_class()
            .map(str::to_string)
            .or_else(|| request.as_ref().and_then(|r| r.sop_class.clone()))
            .or_else(|| ce.abstract_syntax.clone());
        if let Some((p, ae)) = self.party_ae(c, e.from)
            && let Some(sop) = sop_class.as_deref()
            && ae.allows_status(status.value, sop) == Some(false)
        {
            let list = ae.statuses_for(sop).unwrap_or_default();
            let s = self.stmt(p);
            let claim = format!(
                "statuses for {} = [{}]",
                label(s, sop),
                list.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut observed = format!("returned {} to {}", status, cmd.command);
            if let Some(ec) = &cmd.error_comment {
                observed.push_str(&format!(" (error comment {ec:?})"));
            }
            let mut ev = self.evidence(c, e);
            ev.message_id = cmd.responded_to;
            ev.sop_instance = cmd
                .sop_instance()
                .map(str::to_string)
                .or_else(|| request.as_ref().and_then(|r| r.sop_instance.clone()));
            self.report(
                c,
                e.from,
                RuleId::StatusNotClaimed,
                &format!("{} {sop}", status.code),
                claim,
                observed,
                ev,
            );
        }
        // Remember C-STORE successes for Storage Commitment.
        if cmd.command_field == field::C_STORE_RSP
            && matches!(status.class, StatusClass::Success | StatusClass::Warning)
        {
            let inst = cmd
                .sop_instance()
                .map(str::to_string)
                .or_else(|| request.as_ref().and_then(|r| r.sop_instance.clone()));
            if let (Some(inst), Some(party)) = (&inst, c.parties[e.from.index()])
                && self.g.received.insert((party, inst.clone()))
            {
                self.g.received_order.push_back((party, inst.clone()));
                while self.g.received_order.len() > self.cfg.max_stores {
                    if let Some(old) = self.g.received_order.pop_front() {
                        self.g.received.remove(&old);
                    }
                }
            }
            if let Some(inst) = inst {
                let ts = e.ts_us;
                self.g.stores.insert(
                    inst.clone(),
                    StoreRec {
                        scp: c.parties[e.from.index()],
                        association: c.id,
                        message_id: cmd.responded_to,
                        ts_us: ts,
                        status: status.to_string(),
                    },
                );
                self.g.store_order.push_back((inst, ts));
                if self.g.store_order.len() > self.cfg.max_stores {
                    let now = self.g.clock;
                    self.sweep(now);
                }
            }
        }
    }

    fn on_fragment(&mut self, c: &mut Conn, e: &Event, f: &DataFragment) {
        let key = (e.from, f.pc_id);
        let Some(col) = c.collecting.get_mut(&key) else {
            return;
        };
        if !col.overflow {
            if col.bytes.len() + f.bytes.len() > commit::MAX_COMMIT_DATASET {
                col.overflow = true;
                col.bytes = Vec::new();
            } else {
                col.bytes.extend_from_slice(&f.bytes);
            }
        }
        if !f.last {
            return;
        }
        let Some(col) = c.collecting.remove(&key) else {
            return;
        };
        if col.overflow {
            tracing::debug!(
                association = c.id,
                "storage commitment data set over the limit; not parsed"
            );
            return;
        }
        let ts = c
            .contexts
            .get(&f.pc_id)
            .and_then(|(_, ts)| ts.clone())
            .unwrap_or_else(|| "1.2.840.10008.1.2".to_string());
        let ds = match commit::parse(&col.bytes, &ts) {
            Ok(ds) => ds,
            Err(err) => {
                tracing::debug!(association = c.id, %err, "storage commitment data set not readable");
                return;
            }
        };
        match col.kind {
            CollectKind::Action => self.on_commit_request(c, e, &col, ds),
            CollectKind::Report => self.on_commit_report(c, e, &col, ds),
        }
    }

    fn commitment_capability(
        &self,
        p: Option<Party>,
        role: Role,
    ) -> Option<&'a crate::statement::StorageCommitment> {
        let ae = self.ae(p?)?;
        ae.capability(STORAGE_COMMITMENT_PUSH_MODEL, role)?
            .storage_commitment
            .as_ref()
    }

    fn on_commit_request(
        &mut self,
        c: &mut Conn,
        e: &Event,
        col: &Collect,
        ds: commit::CommitDataset,
    ) {
        let Some(txn) = ds.transaction_uid else {
            return;
        };
        let scu = c.parties[e.from.index()];
        let scp = c.parties[e.from.peer().index()];
        let (blamed, max_wait_s) = match self
            .commitment_capability(scp, Role::Scp)
            .and_then(|s| s.max_wait_s)
        {
            Some(w) => (scp, Some(w)),
            None => (
                scu,
                self.commitment_capability(scu, Role::Scu)
                    .and_then(|s| s.max_wait_s),
            ),
        };
        if self.g.commits.len() >= self.cfg.max_commitments {
            // Forget the oldest transaction.
            while let Some((old, _)) = self.g.commit_order.pop_front() {
                if self.g.commits.remove(&old).is_some() {
                    break;
                }
            }
        }
        self.g.commit_order.push_back((txn.clone(), e.ts_us));
        self.g.commits.insert(
            txn,
            PendingCommit {
                blamed,
                scp,
                max_wait_s,
                association: c.id,
                message_id: col.message_id,
                ts_us: e.ts_us,
                instances: ds.referenced.len(),
                client: c.client,
                server: c.server,
                overdue_reported: false,
            },
        );
    }

    fn on_commit_report(
        &mut self,
        c: &mut Conn,
        e: &Event,
        col: &Collect,
        ds: commit::CommitDataset,
    ) {
        let reporter = c.parties[e.from.index()];
        let pending = ds
            .transaction_uid
            .as_ref()
            .and_then(|t| self.g.commits.remove(t));
        let txn = ds
            .transaction_uid
            .clone()
            .unwrap_or_else(|| "(no transaction UID)".into());
        let mut ev = self.evidence(c, e);
        ev.offset = Some(col.offset);
        ev.message_id = col.message_id;
        if let Some(p) = &pending {
            ev.related.push(Related {
                what: format!("N-ACTION-RQ Request Storage Commitment, transaction {txn}"),
                association: p.association,
                message_id: p.message_id,
                ts_us: p.ts_us,
            });
            let same = p.association == c.id;
            let kind = if same {
                ReportOn::SameAssociation
            } else {
                ReportOn::NewAssociation
            };
            if let Some(sc) = self.commitment_capability(reporter, Role::Scp)
                && !sc.report_on.is_empty()
                && !sc.report_on.contains(&kind)
            {
                let claim = format!(
                    "storage_commitment.report_on = [{}]",
                    sc.report_on
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.report(
                    c,
                    e.from,
                    RuleId::StorageCommitmentReportAssociation,
                    &txn,
                    claim,
                    format!(
                        "sent the report for transaction {txn} on {} (association #{})",
                        kind.as_str().replace('_', " "),
                        c.id
                    ),
                    ev.clone(),
                );
            }
            // A transaction already reported overdue (its wait passed before the report
            // came) is not reported a second time.
            if let (Some(wait), Some(blamed), false) = (p.max_wait_s, p.blamed, p.overdue_reported)
            {
                let took = secs(e.ts_us.saturating_sub(p.ts_us));
                if took > wait {
                    self.emit_for(
                        blamed,
                        RuleId::StorageCommitmentOverdue,
                        format!("storage_commitment.max_wait_s = {wait}"),
                        format!("the N-EVENT-REPORT for transaction {txn} came {took:.1} s after the N-ACTION"),
                        ev.clone(),
                    );
                }
            }
        }
        for r in &ds.referenced {
            self.g.stores.remove(&r.sop_instance);
        }
        for f in &ds.failed {
            let Some(store) = self.g.stores.remove(&f.sop_instance) else {
                continue;
            };
            let blamed = store.scp.or(reporter);
            let Some(blamed) = blamed else { continue };
            let reason = f.failure_reason.map_or_else(
                || "no failure reason".to_string(),
                |r| {
                    format!(
                        "failure reason {r:04X} ({})",
                        commit::failure_reason_name(r)
                    )
                },
            );
            let where_ = if store.association == c.id {
                "on the same association".to_string()
            } else {
                format!("on association #{}", c.id)
            };
            let mut ev = ev.clone();
            ev.sop_instance = Some(f.sop_instance.clone());
            ev.related.push(Related {
                what: format!("C-STORE-RSP {}", store.status),
                association: store.association,
                message_id: store.message_id,
                ts_us: store.ts_us,
            });
            let observed = format!(
                "C-STORE of {} answered {} (association #{}, message {}), then Storage Commitment transaction {txn} reported it failed ({reason}) {where_}, {:.1} s later",
                f.sop_instance,
                store.status,
                store.association,
                store
                    .message_id
                    .map_or_else(|| "?".into(), |m| m.to_string()),
                secs(e.ts_us.saturating_sub(store.ts_us)),
            );
            let claim =
                "C-STORE Success means the instance is stored (and can be committed)".to_string();
            if c.parties[e.from.index()] == Some(blamed) {
                self.report(
                    c,
                    e.from,
                    RuleId::SilentSuccess,
                    &f.sop_instance,
                    claim,
                    observed,
                    ev,
                );
            } else {
                self.emit_for(blamed, RuleId::SilentSuccess, claim, observed, ev);
            }
        }
    }

    fn on_peek(&mut self, c: &mut Conn, e: &Event, pe: &DatasetPeekEvent) {
        let Some((p, ae)) = self.party_ae(c, e.from) else {
            return;
        };
        let s = self.stmt(p);
        let peek = &pe.peek;
        let mut ev = self.evidence(c, e);
        ev.message_id = pe.message_id;
        ev.sop_instance = peek.sop_instance_uid.clone();
        let mut pending = Vec::new();
        let claimed = ae.effective_character_sets();
        let declared: Vec<&str> = peek
            .specific_character_set
            .iter()
            .map(|t| t.trim())
            .collect();
        for term in declared.iter().filter(|t| !t.is_empty()) {
            // ISO 2022 IR 6 is the default repertoire too (with code extensions).
            let default = *term == "ISO_IR 6" || *term == "ISO 2022 IR 6";
            if !default && !claimed.iter().any(|c| c.trim() == *term) {
                pending.push((
                    RuleId::CharacterSetNotClaimed,
                    term.to_string(),
                    format!("character_sets = {claimed:?}"),
                    format!(
                        "data set declares Specific Character Set {:?}",
                        peek.specific_character_set.join("\\")
                    ),
                ));
            }
        }
        if let Some(first) = peek.invalid_text.first() {
            let declared_text = if declared.iter().all(|t| t.is_empty()) {
                "the default repertoire (no (0008,0005))".to_string()
            } else {
                format!("{:?}", peek.specific_character_set.join("\\"))
            };
            pending.push((
                RuleId::TextInvalidInCharacterSet,
                peek.specific_character_set.join("\\"),
                format!("character_sets = {claimed:?}; text valid in the declared set"),
                format!(
                    "{} text value(s) not valid in {declared_text}, first {} {} at byte {}: {}",
                    peek.invalid_text.len(),
                    first.tag,
                    first.vr,
                    first.byte_offset,
                    first.reason
                ),
            ));
        }
        // One finding per data set, listing the creators not reported before. A data set
        // this AE itself received earlier (it answered its C-STORE with Success) is relayed,
        // e.g. by an archive's C-MOVE/C-GET sub-operations: its creators are the sender's.
        let relayed = peek
            .sop_instance_uid
            .as_ref()
            .is_some_and(|i| self.g.received.contains(&(p, i.clone())));
        let undocumented: Vec<String> = peek
            .private_creators
            .iter()
            .filter(|_| !relayed)
            .filter(|pc| {
                !ae.private_creators
                    .iter()
                    .any(|x| x.trim() == pc.creator.trim())
            })
            .filter(|pc| {
                !c.reported.contains(&(
                    RuleId::PrivateCreatorUndocumented,
                    e.from,
                    pc.creator.trim().to_string(),
                ))
            })
            .map(|pc| {
                format!(
                    "{:?} ({:04X},{:02X}xx)",
                    pc.creator.trim(),
                    pc.group,
                    pc.block
                )
            })
            .collect();
        if !undocumented.is_empty() {
            for pc in &peek.private_creators {
                if c.reported.len() < self.cfg.max_keys_per_association {
                    c.reported.insert((
                        RuleId::PrivateCreatorUndocumented,
                        e.from,
                        pc.creator.trim().to_string(),
                    ));
                }
            }
            pending.push((
                RuleId::PrivateCreatorUndocumented,
                undocumented.join(","),
                format!("private_creators = {:?}", ae.private_creators),
                format!(
                    "data set has private creator(s) {}",
                    undocumented.join(", ")
                ),
            ));
        }
        if let Some(found) = peek.encoding_found {
            let ts = pe.transfer_syntax.as_deref().unwrap_or("?");
            pending.push((
                RuleId::DatasetEncodingDiffers,
                format!("{ts} {found:?}"),
                format!(
                    "data encoded in the negotiated transfer syntax {}",
                    label(s, ts)
                ),
                format!("data set on context {} encoded as {found:?}", pe.pc_id),
            ));
        }
        for (rule, key, claim, observed) in pending {
            self.report(c, e.from, rule, &key, claim, observed, ev.clone());
        }
    }

    /// `side` aborted or closed: how long had it been waiting, against which timeout?
    fn gave_up(&mut self, c: &mut Conn, e: &Event, how: &str) {
        if c.gave_up {
            return;
        }
        let side = e.from;
        let Some((_, ae)) = self.party_ae(c, side) else {
            return;
        };
        let Some(last) = c.last_pdu_ts else { return };
        let gap = secs(e.ts_us.saturating_sub(last));
        if gap < self.cfg.min_timeout_gap_s {
            return;
        }
        let own_outstanding = c.outstanding.keys().any(|(s, _)| *s == side);
        let peer_outstanding = c.outstanding.keys().any(|(s, _)| *s == side.peer());
        let mut unanswered = String::new();
        let (name, claim, waiting) = if !c.established {
            if side != Side::Requestor {
                return;
            }
            ("artim", ae.timeouts_s.artim, "for the A-ASSOCIATE answer")
        } else if c.release_rq_by == Some(side) && !c.released {
            ("artim", ae.timeouts_s.artim, "for the A-RELEASE-RP")
        } else if own_outstanding {
            let oldest = c
                .outstanding
                .iter()
                .filter(|((s, _), _)| *s == side)
                .map(|(_, o)| o.ts_us)
                .min()
                .unwrap_or(last);
            unanswered = format!(
                " (its oldest unanswered request was sent {:.1} s before)",
                secs(e.ts_us.saturating_sub(oldest))
            );
            ("dimse", ae.timeouts_s.dimse, "for a DIMSE response")
        } else if peer_outstanding {
            // It owed the answer itself: not a timeout of its own.
            return;
        } else {
            ("idle", ae.timeouts_s.idle, "on an idle association")
        };
        let Some(claim) = claim else { return };
        let tol = (claim * 0.1).max(1.0);
        let rule = if gap < claim - tol {
            RuleId::TimeoutShorterThanClaimed
        } else if gap > claim + tol {
            RuleId::TimeoutLongerThanClaimed
        } else {
            return;
        };
        let ev = self.evidence(c, e);
        self.report(
            c,
            side,
            rule,
            name,
            format!("timeouts_s.{name} = {claim}"),
            format!("gave up ({how}) after waiting {gap:.1} s {waiting}{unanswered}"),
            ev,
        );
    }

    /// The association is over: release its counts.
    fn close(&mut self, c: &mut Conn) {
        if c.counted {
            c.counted = false;
            for (side, role) in [
                (Side::Requestor, AssocRole::Initiator),
                (Side::Acceptor, AssocRole::Acceptor),
            ] {
                if let Some(p) = c.parties[side.index()]
                    && let Some(n) = self.g.open.get_mut(&(p, role))
                {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.g.open.remove(&(p, role));
                    }
                }
            }
        }
    }
}

/// The statement's `user_identity` claim as findings quote it.
fn user_identity_claim(ae: &Ae) -> String {
    let types: Vec<&str> = ae.user_identity.iter().map(|t| t.as_str()).collect();
    format!("user_identity = [{}]", types.join(", "))
}

fn roles_claimed(ae: &Ae, sop: &str) -> String {
    let roles: Vec<&str> = ae
        .capability
        .iter()
        .filter(|c| c.sop_class.uid == sop)
        .map(|c| c.role.as_str())
        .collect();
    if roles.is_empty() {
        "none".to_string()
    } else {
        roles.join(", ")
    }
}
