//! Sessions: one association's story, folded from the engine's events. The per-association
//! summary line, the detail view, the JSON report and the conformance checks all read
//! these.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use dicomtap_wire::event::{Event, EventKind, Side};
use dicomtap_wire::finding::{Finding, Severity};
use dicomtap_wire::status::StatusClass;
use serde::Serialize;

/// How the negotiation went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Rejected {
        description: String,
        result: u8,
        source: u8,
        reason: u8,
    },
    /// The A-ASSOCIATE-RQ was seen, the answer never was (one-way capture, or the acceptor
    /// never answered).
    NoAnswer,
    /// The capture started after the negotiation.
    NegotiationNotSeen,
}

/// How the association ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ending {
    Released,
    /// A-ABORT, by whom.
    Aborted {
        by: Side,
        description: String,
    },
    /// TCP closed without release or abort (`inside_pdu`: in the middle of a PDU);
    /// `answer`: what the other side then sent (an A-ABORT), if anything.
    Closed {
        by: Side,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        inside_pdu: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    Reset {
        by: Side,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        inside_pdu: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    /// Association rejected, then closed.
    Rejected,
    /// Still open when the capture or recording ended.
    Open,
}

/// A proposed presentation context with its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextSummary {
    pub id: u8,
    pub abstract_syntax: String,
    pub proposed_transfer_syntaxes: Vec<String>,
    /// `None` when no answer was seen.
    pub result: Option<String>,
    pub transfer_syntax: Option<String>,
}

/// One DIMSE exchange: a request and its final response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    pub ts_us: u64,
    pub by: Side,
    pub command: String,
    pub message_id: Option<u16>,
    pub sop_class: Option<String>,
    pub sop_instance: Option<String>,
    pub status: Option<String>,
    pub status_class: Option<StatusClass>,
    pub latency_us: Option<u64>,
    /// Pending responses seen before the final one.
    pub pending: u32,
}

/// Counts of one DIMSE service by status class of its final responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DimseCounts {
    pub requests: u64,
    pub success: u64,
    pub warning: u64,
    pub failure: u64,
    pub cancel: u64,
    pub pending: u64,
    pub unanswered: u64,
    /// Final responses whose request was not seen (capture loss or a late start).
    pub without_request: u64,
}

/// Findings of one code beyond the first [`FIRST_OF_A_KIND`] of an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RepeatedFindings {
    pub count: u64,
    pub severity: Severity,
}

/// A finding with where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionFinding {
    pub ts_us: u64,
    pub from: Side,
    pub offset: u64,
    #[serde(flatten)]
    pub finding: Finding,
}

/// Per-side facts from the negotiation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerFacts {
    pub ae_title: Option<String>,
    pub max_length: Option<u32>,
    pub implementation_class_uid: Option<String>,
    pub implementation_version_name: Option<String>,
    pub bytes: u64,
    pub pdus: u64,
    pub largest_pdu: u32,
    /// Bytes this side sent that are missing from the capture (its gaps): not 0 when the
    /// capture of the association is incomplete.
    pub gap_bytes: u64,
}

/// One association.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub id: u64,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub first_ts_us: u64,
    pub last_ts_us: u64,
    pub requestor: PeerFacts,
    pub acceptor: PeerFacts,
    pub outcome: Outcome,
    pub ending: Ending,
    /// The presentation contexts, the first [`MAX_CONTEXTS`] of them.
    pub contexts: Vec<ContextSummary>,
    /// Contexts not kept beyond [`MAX_CONTEXTS`] (PS3.8 allows 128 an association).
    pub contexts_dropped: u64,
    pub dimse: BTreeMap<String, DimseCounts>,
    pub exchanges: Vec<Exchange>,
    /// Exchanges not kept in `exchanges` because of the cap.
    pub exchanges_dropped: u64,
    /// The first [`FIRST_OF_A_KIND`] findings of each code, with their evidence.
    pub findings: Vec<SessionFinding>,
    /// Findings of a code past its first [`FIRST_OF_A_KIND`]: code -> count and worst
    /// severity (a stream of one odd PDU must not bury the findings of other kinds).
    pub findings_repeated: BTreeMap<String, RepeatedFindings>,
    /// Findings not kept because `findings` was full (many different codes).
    pub findings_dropped: u64,
    pub data_sets: u64,
    pub data_set_bytes: u64,
    /// The connection carried TLS (what the first bytes said), so nothing was decoded.
    pub encrypted: Option<String>,
}

impl Session {
    pub fn duration_us(&self) -> u64 {
        self.last_ts_us.saturating_sub(self.first_ts_us)
    }

    /// Contexts of the association, those not kept included.
    pub fn proposed_contexts(&self) -> u64 {
        self.contexts.len() as u64 + self.contexts_dropped
    }

    pub fn accepted_contexts(&self) -> usize {
        self.contexts
            .iter()
            .filter(|c| c.result.as_deref() == Some("acceptance"))
            .count()
    }

    /// The worst finding severity, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings
            .iter()
            .map(|f| f.finding.severity)
            .chain(self.findings_repeated.values().map(|r| r.severity))
            .max()
    }

    /// How many findings of `severity` the association had, those only counted included.
    pub fn findings_of(&self, severity: Severity) -> u64 {
        let kept = self
            .findings
            .iter()
            .filter(|f| f.finding.severity == severity)
            .count() as u64;
        let repeated: u64 = self
            .findings_repeated
            .values()
            .filter(|r| r.severity == severity)
            .map(|r| r.count)
            .sum();
        kept + repeated
    }
}

/// Caps that keep a long association's session bounded.
const MAX_EXCHANGES: usize = 100_000;
const MAX_FINDINGS: usize = 10_000;
/// Contexts kept: context ids are one byte, so no more than this can be told apart.
pub const MAX_CONTEXTS: usize = 256;
/// Findings of one code kept with their evidence per association; the rest are counted
/// (the proxy's event log keeps as many, docs/events.md "Bounds").
pub const FIRST_OF_A_KIND: u64 = 10;

/// Folds events into a [`Session`].
#[derive(Debug)]
pub struct SessionBuilder {
    s: Session,
    /// Requests waiting for their final response: (sender, message id) -> index in exchanges.
    open: BTreeMap<(Side, u16), usize>,
    ended: [Option<(dicomtap_wire::StreamEnd, u64)>; 2],
    /// A side's stream ended inside a PDU (the engine's truncated-PDU finding).
    truncated: [bool; 2],
    started: bool,
    /// Findings seen per code.
    per_code: BTreeMap<&'static str, u64>,
}

impl SessionBuilder {
    pub fn new(id: u64, client: Option<SocketAddr>, server: Option<SocketAddr>) -> Self {
        SessionBuilder {
            s: Session {
                id,
                client,
                server,
                first_ts_us: 0,
                last_ts_us: 0,
                requestor: PeerFacts::default(),
                acceptor: PeerFacts::default(),
                outcome: Outcome::NegotiationNotSeen,
                ending: Ending::Open,
                contexts: Vec::new(),
                contexts_dropped: 0,
                dimse: BTreeMap::new(),
                exchanges: Vec::new(),
                exchanges_dropped: 0,
                findings: Vec::new(),
                findings_repeated: BTreeMap::new(),
                findings_dropped: 0,
                data_sets: 0,
                data_set_bytes: 0,
                encrypted: None,
            },
            open: BTreeMap::new(),
            ended: [None, None],
            truncated: [false; 2],
            per_code: BTreeMap::new(),
            started: false,
        }
    }

    /// Counts bytes carried for `side` (TCP payload), whatever the engine made of them.
    pub fn bytes(&mut self, side: Side, n: u64, ts_us: u64) {
        self.touch(ts_us);
        self.peer(side).bytes += n;
    }

    fn touch(&mut self, ts_us: u64) {
        if !self.started {
            self.started = true;
            self.s.first_ts_us = ts_us;
        }
        self.s.last_ts_us = self.s.last_ts_us.max(ts_us);
    }

    fn peer(&mut self, side: Side) -> &mut PeerFacts {
        match side {
            Side::Requestor => &mut self.s.requestor,
            Side::Acceptor => &mut self.s.acceptor,
        }
    }

    /// The acceptor's address, once known (the proxy learns it when it connects upstream).
    pub fn set_server(&mut self, server: SocketAddr) {
        self.s.server = Some(server);
    }

    /// Marks the connection as encrypted (TLS), with what was recognised.
    pub fn set_encrypted(&mut self, what: String) {
        self.s.encrypted = Some(what);
    }

    /// The session so far.
    pub fn session(&self) -> &Session {
        &self.s
    }

    /// Folds one event in.
    pub fn observe(&mut self, e: &Event) {
        self.touch(e.ts_us);
        match &e.kind {
            EventKind::AssociateRq(rq) => {
                self.s.outcome = Outcome::NoAnswer;
                self.s.requestor.ae_title = Some(rq.calling_ae.clone());
                self.s.acceptor.ae_title = Some(rq.called_ae.clone());
                self.s.requestor.max_length = rq.user_info.max_length;
                self.s.requestor.implementation_class_uid =
                    rq.user_info.implementation_class_uid.clone();
                self.s.requestor.implementation_version_name =
                    rq.user_info.implementation_version_name.clone();
                self.s.contexts_dropped = rq.contexts.len().saturating_sub(MAX_CONTEXTS) as u64;
                self.s.contexts = rq
                    .contexts
                    .iter()
                    .take(MAX_CONTEXTS)
                    .map(|c| ContextSummary {
                        id: c.id,
                        abstract_syntax: c.abstract_syntax.clone(),
                        proposed_transfer_syntaxes: c.transfer_syntaxes.clone(),
                        result: None,
                        transfer_syntax: None,
                    })
                    .collect();
                self.count_pdu(e.from, 0);
            }
            EventKind::AssociateAc(ac) => {
                self.s.outcome = Outcome::Accepted;
                self.s.acceptor.max_length = ac.user_info.max_length;
                self.s.acceptor.implementation_class_uid =
                    ac.user_info.implementation_class_uid.clone();
                self.s.acceptor.implementation_version_name =
                    ac.user_info.implementation_version_name.clone();
                for r in &ac.results {
                    let full = self.s.contexts.len() >= MAX_CONTEXTS;
                    match self.s.contexts.iter_mut().find(|c| c.id == r.id) {
                        Some(c) => {
                            c.result = Some(r.result_name.to_string());
                            c.transfer_syntax = r.transfer_syntax.clone();
                        }
                        None if full => {
                            self.s.contexts_dropped += 1;
                        }
                        None => self.s.contexts.push(ContextSummary {
                            id: r.id,
                            abstract_syntax: String::new(),
                            proposed_transfer_syntaxes: Vec::new(),
                            result: Some(r.result_name.to_string()),
                            transfer_syntax: r.transfer_syntax.clone(),
                        }),
                    }
                }
                self.count_pdu(e.from, 0);
            }
            EventKind::AssociateRj(rj) => {
                self.s.outcome = Outcome::Rejected {
                    description: rj.description.clone(),
                    result: rj.result,
                    source: rj.source,
                    reason: rj.reason,
                };
                self.s.ending = Ending::Rejected;
                self.count_pdu(e.from, 0);
            }
            EventKind::ReleaseRq => self.count_pdu(e.from, 0),
            EventKind::ReleaseRp => {
                self.count_pdu(e.from, 0);
                self.s.ending = Ending::Released;
            }
            EventKind::Abort(a) => {
                self.count_pdu(e.from, 0);
                match &mut self.s.ending {
                    // The other side closed first: the A-ABORT answers that, the close
                    // stays the cause.
                    Ending::Closed { by, answer, .. } | Ending::Reset { by, answer, .. }
                        if *by != e.from =>
                    {
                        answer.get_or_insert_with(|| format!("A-ABORT ({})", a.description));
                    }
                    _ => {
                        self.s.ending = Ending::Aborted {
                            by: e.from,
                            description: a.description.clone(),
                        };
                    }
                }
            }
            EventKind::PData(p) => self.count_pdu(e.from, p.pdu_length),
            EventKind::UnknownPdu { length, .. } => self.count_pdu(e.from, *length),
            EventKind::Command(c) => self.command(e, c),
            EventKind::DatasetEnd(d) => {
                self.s.data_sets += 1;
                self.s.data_set_bytes += d.length;
            }
            EventKind::StreamEnd { how } => {
                self.ended[e.from.index()] = Some((*how, e.ts_us));
                if matches!(self.s.ending, Ending::Open) {
                    let inside_pdu = self.truncated[e.from.index()];
                    self.s.ending = match how {
                        dicomtap_wire::StreamEnd::Close => Ending::Closed {
                            by: e.from,
                            inside_pdu,
                            answer: None,
                        },
                        dicomtap_wire::StreamEnd::Reset => Ending::Reset {
                            by: e.from,
                            inside_pdu,
                            answer: None,
                        },
                    };
                }
            }
            EventKind::Finding(f) => {
                if f.code == dicomtap_wire::FindingCode::TruncatedPdu {
                    self.truncated[e.from.index()] = true;
                }
                let seen = self.per_code.entry(f.code.id()).or_insert(0);
                *seen += 1;
                if *seen > FIRST_OF_A_KIND {
                    let r = self
                        .s
                        .findings_repeated
                        .entry(f.code.id().to_string())
                        .or_insert(RepeatedFindings {
                            count: 0,
                            severity: f.severity,
                        });
                    r.count += 1;
                    r.severity = r.severity.max(f.severity);
                } else if self.s.findings.len() < MAX_FINDINGS {
                    self.s.findings.push(SessionFinding {
                        ts_us: e.ts_us,
                        from: e.from,
                        offset: e.offset,
                        finding: f.clone(),
                    });
                } else {
                    self.s.findings_dropped += 1;
                }
            }
            EventKind::Gap { missing } => self.peer(e.from).gap_bytes += missing,
            EventKind::DatasetPeek(_)
            | EventKind::DataFragment(_)
            | EventKind::Omitted { .. }
            | EventKind::Resync { .. } => {}
        }
    }

    fn count_pdu(&mut self, side: Side, len: u32) {
        let p = self.peer(side);
        p.pdus += 1;
        p.largest_pdu = p.largest_pdu.max(len);
    }

    fn command(&mut self, e: &Event, c: &dicomtap_wire::event::CommandEvent) {
        let cmd = &c.command;
        let service = cmd.service().to_string();
        if cmd.is_request() {
            self.s.dimse.entry(service.clone()).or_default().requests += 1;
            if cmd.command_field == dicomtap_wire::dimse::field::C_CANCEL_RQ {
                return;
            }
            let ex = Exchange {
                ts_us: e.ts_us,
                by: e.from,
                command: service,
                message_id: cmd.message_id,
                sop_class: cmd.sop_class().map(str::to_string),
                sop_instance: cmd.sop_instance().map(str::to_string),
                status: None,
                status_class: None,
                latency_us: None,
                pending: 0,
            };
            if self.s.exchanges.len() >= MAX_EXCHANGES {
                self.s.exchanges_dropped += 1;
                return;
            }
            if let Some(id) = cmd.message_id {
                self.open.insert((e.from, id), self.s.exchanges.len());
            }
            self.s.exchanges.push(ex);
            return;
        }
        let class = cmd.status_class();
        let counts = self.s.dimse.entry(service.clone()).or_default();
        match class {
            Some(StatusClass::Pending) => counts.pending += 1,
            Some(StatusClass::Success) => counts.success += 1,
            Some(StatusClass::Warning) => counts.warning += 1,
            Some(StatusClass::Failure) | None => counts.failure += 1,
            Some(StatusClass::Cancel) => counts.cancel += 1,
        }
        let Some(id) = cmd.responded_to else { return };
        let key = (e.from.peer(), id);
        let Some(&idx) = self.open.get(&key) else {
            if class != Some(StatusClass::Pending) {
                self.s.dimse.entry(service).or_default().without_request += 1;
            }
            return;
        };
        let Some(ex) = self.s.exchanges.get_mut(idx) else {
            return;
        };
        if class == Some(StatusClass::Pending) {
            ex.pending += 1;
            return;
        }
        ex.status = cmd.status.as_ref().map(|s| s.code.clone());
        ex.status_class = class;
        ex.latency_us = c.latency_us;
        self.open.remove(&key);
    }

    /// The finished session: requests never answered are counted as such.
    pub fn finish(mut self) -> Session {
        for (&(_, _), &idx) in &self.open {
            if let Some(ex) = self.s.exchanges.get(idx) {
                let service = ex.command.clone();
                self.s.dimse.entry(service).or_default().unanswered += 1;
            }
        }
        self.s
    }
}
