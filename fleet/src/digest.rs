//! Turns the event stream of one instance (the proxy's [`ProxyEvent`]s, or the wire
//! events of a passive monitor) into fleet events: one per association when it ends, one
//! per answered C-STORE, one per Storage Commitment request or result, one per
//! conformance finding.
//!
//! Bounded whatever the traffic: at most [`MAX_OPEN`] associations are followed at once
//! (the oldest is summarised early beyond that), at most [`MAX_PENDING`] C-STOREs wait for
//! their answer per association, a commitment data set is collected up to
//! [`commit::MAX_COMMIT_DATASET`] bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use dicomtap_analyzer::conformance::commit;
use dicomtap_proxy::server::{Notice, ProxyEvent, ProxyEventKind};
use dicomtap_wire::{Event, EventKind, Side};

use crate::schema::{
    AssociationEvent, Body, CommitmentEvent, ContextOutcome, FailedInstance, FindingEvent,
    MAX_REFUSED_LISTED, Parties, StoreEvent,
};

/// Associations followed at once.
pub const MAX_OPEN: usize = 20_000;
/// C-STOREs waiting for their answer, per association.
pub const MAX_PENDING: usize = 1024;
/// Proposed contexts kept per association (PS3.8 allows 128).
const MAX_CONTEXTS: usize = 128;

#[derive(Default)]
struct Assoc {
    parties: Parties,
    first_ts_us: u64,
    outcome: Option<String>,
    /// Proposed: id → abstract syntax.
    proposed: BTreeMap<u8, String>,
    /// Results: id → (result, transfer syntax).
    results: BTreeMap<u8, (String, Option<String>)>,
    stores: HashMap<u16, (Option<String>, String)>,
    /// Contexts a command was sent on.
    used: std::collections::BTreeSet<u8>,
    requests: BTreeMap<String, u64>,
    responses: BTreeMap<String, u64>,
    collect: Option<Collect>,
    aborted: bool,
    released: bool,
}

struct Collect {
    pc_id: u8,
    phase: &'static str,
    from: Side,
    bytes: Vec<u8>,
    too_large: bool,
}

/// The digest of one instance's traffic.
#[derive(Default)]
pub struct Digest {
    open: HashMap<u64, Assoc>,
    order: VecDeque<u64>,
}

impl Digest {
    pub fn new() -> Digest {
        Digest::default()
    }

    /// Associations followed now.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    fn assoc(&mut self, id: u64, ts_us: u64, out: &mut Vec<(u64, Body)>) -> &mut Assoc {
        if !self.open.contains_key(&id) {
            while self.open.len() >= MAX_OPEN {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                if let Some(a) = self.open.remove(&old) {
                    out.push((
                        ts_us,
                        Body::Association(summary(a, "untracked", 0, 0, ts_us)),
                    ));
                }
            }
            self.order.push_back(id);
        }
        self.open.entry(id).or_insert_with(|| Assoc {
            parties: Parties {
                assoc: id,
                ..Parties::default()
            },
            first_ts_us: ts_us,
            ..Assoc::default()
        })
    }

    /// One event of the proxy's stream.
    pub fn proxy_event(&mut self, ev: &ProxyEvent, out: &mut Vec<(u64, Body)>) {
        let ts = ev.ts_us();
        match &ev.kind {
            ProxyEventKind::Wire(w) => {
                self.wire(ev.association, Some(ev.client), ev.upstream, w, out);
            }
            ProxyEventKind::Conformance(c) => {
                let f = &c.finding;
                let a = self.assoc(ev.association, ts, out);
                let mut parties = a.parties.clone();
                parties.client = Some(ev.client.to_string());
                out.push((
                    c.ts_us,
                    Body::Finding(FindingEvent {
                        parties,
                        rule: f.rule.as_str().to_string(),
                        severity: f.severity.to_string(),
                        device: f.device.clone(),
                        ae: f.ae.clone(),
                        claim: f.claim.clone(),
                        observed: f.observed.clone(),
                        message_id: f.evidence.message_id,
                        sop_instance: f.evidence.sop_instance.clone(),
                    }),
                ));
            }
            ProxyEventKind::Proxy(n) => match &n.what {
                Notice::Accepted { .. } => {
                    let a = self.assoc(ev.association, ts, out);
                    a.parties.client = Some(ev.client.to_string());
                }
                Notice::UpstreamConnected { .. } => {
                    let a = self.assoc(ev.association, ts, out);
                    a.parties.server = ev.upstream.map(|u| u.to_string());
                }
                Notice::UpstreamError { .. } => {
                    self.assoc(ev.association, ts, out).outcome = Some("upstream_failed".into());
                }
                Notice::ProxyReject { .. } | Notice::AccessDenied { .. } => {
                    self.assoc(ev.association, ts, out).outcome = Some("proxy_rejected".into());
                }
                Notice::TlsHandshakeFailed { .. } => {
                    self.assoc(ev.association, ts, out).outcome = Some("tls_failed".into());
                }
                Notice::Closed {
                    bytes_from_requestor,
                    bytes_from_acceptor,
                    duration_us,
                    how,
                } => {
                    if let Some(a) = self.open.remove(&ev.association) {
                        self.order.retain(|x| *x != ev.association);
                        out.push((
                            ts,
                            Body::Association(summary(
                                a,
                                how,
                                *bytes_from_requestor,
                                *bytes_from_acceptor,
                                *duration_us,
                            )),
                        ));
                    }
                }
                Notice::ProxyAbort { .. }
                | Notice::TlsEstablished { .. }
                | Notice::EventsSuppressed(_) => {}
            },
        }
    }

    /// One wire event of association `id`.
    pub fn wire(
        &mut self,
        id: u64,
        client: Option<SocketAddr>,
        server: Option<SocketAddr>,
        ev: &Event,
        out: &mut Vec<(u64, Body)>,
    ) {
        let a = self.assoc(id, ev.ts_us, out);
        if a.parties.client.is_none() {
            a.parties.client = client.map(|c| c.to_string());
        }
        if a.parties.server.is_none() {
            a.parties.server = server.map(|s| s.to_string());
        }
        match &ev.kind {
            EventKind::AssociateRq(rq) => {
                a.parties.calling_ae = Some(rq.calling_ae.clone());
                a.parties.called_ae = Some(rq.called_ae.clone());
                for pc in rq.contexts.iter().take(MAX_CONTEXTS) {
                    a.proposed.insert(pc.id, pc.abstract_syntax.clone());
                }
            }
            EventKind::AssociateAc(ac) => {
                a.outcome = Some("accepted".into());
                for r in ac.results.iter().take(MAX_CONTEXTS) {
                    let result = if r.accepted() {
                        "accepted".to_string()
                    } else {
                        r.result_name.to_string()
                    };
                    a.results.insert(r.id, (result, r.transfer_syntax.clone()));
                }
            }
            EventKind::AssociateRj(_) => a.outcome = Some("rejected".into()),
            EventKind::Abort(_) => a.aborted = true,
            EventKind::ReleaseRp => a.released = true,
            EventKind::Command(c) => {
                a.used.insert(c.pc_id);
                let cmd = &c.command;
                let name = cmd.command;
                if let Some(st) = &cmd.status {
                    *a.responses
                        .entry(st.class.as_str().to_string())
                        .or_default() += 1;
                } else if a.requests.len() < 32 || a.requests.contains_key(name) {
                    *a.requests.entry(name.to_string()).or_default() += 1;
                }
                match name {
                    "C-STORE-RQ" => {
                        if let (Some(mid), Some(inst)) =
                            (cmd.message_id, &cmd.affected_sop_instance)
                            && a.stores.len() < MAX_PENDING
                        {
                            a.stores
                                .insert(mid, (cmd.affected_sop_class.clone(), inst.clone()));
                        }
                    }
                    "C-STORE-RSP" => {
                        let pending = cmd.responded_to.and_then(|m| a.stores.remove(&m));
                        let (class, inst) = match (pending, &cmd.affected_sop_instance) {
                            (Some(p), _) => p,
                            (None, Some(i)) => (cmd.affected_sop_class.clone(), i.clone()),
                            (None, None) => return,
                        };
                        if let Some(st) = &cmd.status {
                            out.push((
                                ev.ts_us,
                                Body::Store(StoreEvent {
                                    parties: a.parties.clone(),
                                    message_id: cmd.responded_to,
                                    sop_class: class,
                                    sop_instance: inst,
                                    status: st.code.clone(),
                                    status_class: st.class.as_str().to_string(),
                                }),
                            ));
                        }
                    }
                    "N-ACTION-RQ" | "N-EVENT-REPORT-RQ" if cmd.has_dataset => {
                        let class = cmd
                            .requested_sop_class
                            .as_deref()
                            .or(cmd.affected_sop_class.as_deref())
                            .or(c.abstract_syntax.as_deref());
                        if class == Some(commit::STORAGE_COMMITMENT_PUSH_MODEL) {
                            a.collect = Some(Collect {
                                pc_id: c.pc_id,
                                phase: if name == "N-ACTION-RQ" {
                                    "request"
                                } else {
                                    "result"
                                },
                                from: ev.from,
                                bytes: Vec::new(),
                                too_large: false,
                            });
                        }
                    }
                    _ => {}
                }
            }
            EventKind::DataFragment(f) => {
                let Some(col) = a.collect.as_mut() else {
                    return;
                };
                if col.pc_id != f.pc_id || col.from != ev.from {
                    return;
                }
                if col.bytes.len() + f.bytes.len() > commit::MAX_COMMIT_DATASET {
                    col.too_large = true;
                } else if !col.too_large {
                    col.bytes.extend_from_slice(&f.bytes);
                }
                if !f.last {
                    return;
                }
                let Some(col) = a.collect.take() else { return };
                if col.too_large {
                    tracing::debug!(association = id, "storage commitment data set too large");
                    return;
                }
                let ts_uid = a
                    .results
                    .get(&col.pc_id)
                    .and_then(|(_, ts)| ts.clone())
                    .unwrap_or_else(|| "1.2.840.10008.1.2".to_string());
                match commit::parse(&col.bytes, &ts_uid) {
                    Ok(ds) => out.push((
                        ev.ts_us,
                        Body::Commitment(CommitmentEvent {
                            parties: a.parties.clone(),
                            phase: col.phase.to_string(),
                            from: col.from.to_string(),
                            transaction_uid: ds.transaction_uid,
                            referenced: ds.referenced.into_iter().map(|r| r.sop_instance).collect(),
                            failed: ds
                                .failed
                                .into_iter()
                                .map(|r| FailedInstance {
                                    sop_instance: r.sop_instance,
                                    failure_reason: r.failure_reason,
                                })
                                .collect(),
                        }),
                    )),
                    Err(e) => {
                        tracing::debug!(association = id, "storage commitment data set: {e}");
                    }
                }
            }
            _ => {}
        }
    }

    /// Association `id` ended (for a monitor, whose stream has no close notice).
    pub fn end(
        &mut self,
        id: u64,
        ts_us: u64,
        bytes_from_requestor: u64,
        bytes_from_acceptor: u64,
        out: &mut Vec<(u64, Body)>,
    ) {
        if let Some(a) = self.open.remove(&id) {
            self.order.retain(|x| *x != id);
            let duration = ts_us.saturating_sub(a.first_ts_us);
            out.push((
                ts_us,
                Body::Association(summary(
                    a,
                    "closed",
                    bytes_from_requestor,
                    bytes_from_acceptor,
                    duration,
                )),
            ));
        }
    }
}

fn summary(a: Assoc, how: &str, req: u64, acc: u64, duration_us: u64) -> AssociationEvent {
    let mut contexts = Vec::new();
    let mut refused_listed = 0;
    let mut accepted = 0u32;
    for (id, abs) in &a.proposed {
        let (result, ts) = a
            .results
            .get(id)
            .cloned()
            .unwrap_or_else(|| ("unanswered".to_string(), None));
        let is_accepted = result == "accepted";
        accepted += u32::from(is_accepted);
        let listed = if a.used.contains(id) {
            true
        } else if !is_accepted && result != "unanswered" && refused_listed < MAX_REFUSED_LISTED {
            refused_listed += 1;
            true
        } else {
            false
        };
        if listed {
            contexts.push(ContextOutcome {
                abstract_syntax: abs.clone(),
                transfer_syntax: ts,
                result,
            });
        }
    }
    let ended = if a.aborted {
        "aborted".to_string()
    } else if a.released {
        "released".to_string()
    } else {
        how.to_string()
    };
    AssociationEvent {
        parties: a.parties,
        outcome: a.outcome.unwrap_or_else(|| "no_response".to_string()),
        ended,
        contexts,
        proposed_contexts: a.proposed.len() as u32,
        accepted_contexts: accepted,
        requests: a.requests,
        responses: a.responses,
        bytes_from_requestor: req,
        bytes_from_acceptor: acc,
        duration_us,
    }
}
