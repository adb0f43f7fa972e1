//! Storage Commitment, followed across associations: C-STORE successes later reported
//! failed, reports overdue against the claimed wait, and reports on a kind of
//! association the statement does not claim.
//!
//! C-STORE successes are remembered by SOP instance UID and N-ACTION transactions by
//! Transaction UID, both capped and expiring in capture time ([`Memory`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use dicomtap_wire::Event;
use dicomtap_wire::Severity::{Error, Warning};
use dicomtap_wire::dimse::{Command, field};
use dicomtap_wire::event::{CommandEvent, DataFragment};
use dicomtap_wire::status::{Status, StatusClass};
use dicomtap_wire::syntax::IMPLICIT_VR_LITTLE_ENDIAN;
use dicomtap_wire::uid::STORAGE_COMMITMENT_PUSH_MODEL;

use super::{Rule, RuleId};
use crate::conformance::checker::{Conn, Ctx, Outstanding, Party, secs, us};
use crate::conformance::commit;
use crate::conformance::{Evidence, Related};
use crate::statement::{ReportOn, Role, StorageCommitment};

/// The rules of this family, in catalogue order.
pub(super) const RULES: [Rule; 3] = [
    Rule {
        id: RuleId::SilentSuccess,
        severity: Error,
        claim: "ae.capability.storage_commitment",
        summary: "An instance was answered C-STORE Success and later reported failed by Storage Commitment.",
        why: "Senders delete local copies after Success plus commitment; a commitment failure after a Success status means the archive lost data it said it had, possibly discovered only when the study is missing.",
        detection: "C-STORE responses are remembered by SOP instance UID (bounded, with expiry); the Failed SOP Sequence (0008,1198) of every Storage Commitment N-EVENT-REPORT, on any association, is checked against them.",
        remedy: "Investigate the archive's storage (disk, database, coercion rules) for the failed instances and resend them; report the silent failure to the vendor.",
    },
    Rule {
        id: RuleId::StorageCommitmentOverdue,
        severity: Warning,
        claim: "ae.capability.storage_commitment.max_wait_s",
        summary: "A Storage Commitment request was not answered by an N-EVENT-REPORT within the claimed maximum wait.",
        why: "Senders keep local copies until commitment; a commitment that never comes fills the sender's disk or makes it give up and resend, and the instances may not be safely archived.",
        detection: "Each N-ACTION Request Storage Commitment (by Transaction UID) is remembered until its N-EVENT-REPORT; when the claimed max_wait_s (of the SCP, else of the SCU) passes in capture time without one, or the report comes later than that, the rule fires, once per transaction. The transaction is remembered after that (until the commitment memory, a day by default, or the claimed wait if longer, passes; the most recent 10,000 transactions at most), so a report that comes late is still matched: it is checked for its association (storage-commitment-report-association) and its failed instances (silent-success), with the N-ACTION linked in the evidence. A capture that ends before the deadline proves nothing and reports nothing.",
        remedy: "Check the commitment SCP's queue and its ability to connect back to the requestor (report on a new association needs the requestor's AE, host and port configured).",
    },
    Rule {
        id: RuleId::StorageCommitmentReportAssociation,
        severity: Warning,
        claim: "ae.capability.storage_commitment.report_on",
        summary: "A Storage Commitment report was sent on a kind of association (the same one, or a new one) that the statement does not claim.",
        why: "A requestor that only listens for reports on the association it opened (or only accepts new associations for them) never sees a report sent the other way, and keeps waiting.",
        detection: "The N-EVENT-REPORT is matched to its N-ACTION by Transaction UID; whether it came on the same association is compared with report_on of the SCP's capability.",
        remedy: "Configure how the commitment SCP reports, or correct the statement.",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollectKind {
    Action,
    Report,
}

/// The data set of a Storage Commitment N-ACTION or N-EVENT-REPORT being collected.
#[derive(Debug)]
pub(crate) struct Collect {
    kind: CollectKind,
    message_id: Option<u16>,
    offset: u64,
    bytes: Vec<u8>,
    overflow: bool,
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

/// What Storage Commitment remembers across associations, bounded in number and age.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    stores: HashMap<String, StoreRec>,
    store_order: VecDeque<(String, u64)>,
    /// SOP instances each party received with a C-STORE Success (bounded by max_stores):
    /// what it sends of them later is relayed, not its own.
    received: HashSet<(Party, String)>,
    received_order: VecDeque<(Party, String)>,
    commits: HashMap<String, PendingCommit>,
    commit_order: VecDeque<(String, u64)>,
}

impl Memory {
    /// Transactions waiting for their report, C-STORE successes remembered.
    pub(crate) fn pending(&self) -> (usize, usize) {
        (self.commits.len(), self.stores.len())
    }

    /// `p` answered a C-STORE of `instance` with Success (and it is still remembered).
    pub(crate) fn received(&self, p: Party, instance: &str) -> bool {
        self.received.contains(&(p, instance.to_string()))
    }
}

/// A request: an N-ACTION Request Storage Commitment or a Storage Commitment
/// N-EVENT-REPORT with a data set starts collecting that data set.
pub(crate) fn request_seen(c: &mut Conn, e: &Event, ce: &CommandEvent) {
    let cmd = &ce.command;
    let commitment = cmd.sop_class() == Some(STORAGE_COMMITMENT_PUSH_MODEL) && cmd.has_dataset;
    let kind = match cmd.command_field {
        field::N_ACTION_RQ if commitment && cmd.action_type_id == Some(1) => {
            Some(CollectKind::Action)
        }
        field::N_EVENT_REPORT_RQ if commitment && matches!(cmd.event_type_id, Some(1 | 2)) => {
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
}

impl<'a> Ctx<'a> {
    /// Remembers C-STORE successes for Storage Commitment.
    pub(crate) fn store_answered(
        &mut self,
        c: &Conn,
        e: &Event,
        cmd: &Command,
        status: &Status,
        request: Option<&Outstanding>,
    ) {
        if cmd.command_field != field::C_STORE_RSP
            || !matches!(status.class, StatusClass::Success | StatusClass::Warning)
        {
            return;
        }
        let inst = cmd
            .sop_instance()
            .map(str::to_string)
            .or_else(|| request.and_then(|r| r.sop_instance.clone()));
        let m = &mut self.g.commit;
        if let (Some(inst), Some(party)) = (&inst, c.parties[e.from.index()])
            && m.received.insert((party, inst.clone()))
        {
            m.received_order.push_back((party, inst.clone()));
            while m.received_order.len() > self.cfg.max_stores {
                if let Some(old) = m.received_order.pop_front() {
                    m.received.remove(&old);
                }
            }
        }
        if let Some(inst) = inst {
            let ts = e.ts_us;
            m.stores.insert(
                inst.clone(),
                StoreRec {
                    scp: c.parties[e.from.index()],
                    association: c.id,
                    message_id: cmd.responded_to,
                    ts_us: ts,
                    status: status.to_string(),
                },
            );
            m.store_order.push_back((inst, ts));
            if m.store_order.len() > self.cfg.max_stores {
                let now = self.g.clock;
                self.sweep(now);
            }
        }
    }

    /// Forgets C-STORE successes past their memory, reports commitments past their
    /// claimed wait (once) and forgets them after the commitment memory.
    pub(crate) fn expire_commitment_memory(&mut self, now: u64) {
        // C-STORE successes past their memory.
        let horizon = us(self.cfg.store_memory_s);
        let m = &mut self.g.commit;
        while let Some((inst, ts)) = m.store_order.front().cloned() {
            let over = m.store_order.len() > self.cfg.max_stores;
            if now.saturating_sub(ts) < horizon && !over {
                break;
            }
            m.store_order.pop_front();
            if m.stores.get(&inst).is_some_and(|r| r.ts_us == ts) {
                m.stores.remove(&inst);
            }
        }
        // Commitments past their claimed wait are reported overdue once and kept, so that
        // a late report is still checked; they are forgotten after the commitment memory
        // (or the claimed wait, if longer).
        let mut due = Vec::new();
        let mut expired = Vec::new();
        for (txn, p) in &m.commits {
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
            let Some(p) = self.g.commit.commits.get_mut(&txn) else {
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
        let m = &mut self.g.commit;
        for txn in expired {
            m.commits.remove(&txn);
        }
        let commits = &m.commits;
        m.commit_order.retain(|(t, _)| commits.contains_key(t));
    }

    /// A fragment of a data set: collected when it belongs to a Storage Commitment
    /// message, which is evaluated once complete.
    pub(crate) fn commitment_fragment(&mut self, c: &mut Conn, e: &Event, f: &DataFragment) {
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
            .unwrap_or_else(|| IMPLICIT_VR_LITTLE_ENDIAN.to_string());
        let ds = match commit::parse(&col.bytes, &ts) {
            Ok(ds) => ds,
            Err(err) => {
                tracing::debug!(association = c.id, %err, "storage commitment data set not readable");
                return;
            }
        };
        match col.kind {
            CollectKind::Action => self.commit_requested(c, e, &col, ds),
            CollectKind::Report => self.commit_reported(c, e, &col, ds),
        }
    }

    fn commitment_capability(&self, p: Option<Party>, role: Role) -> Option<&'a StorageCommitment> {
        let ae = self.ae(p?)?;
        ae.capability(STORAGE_COMMITMENT_PUSH_MODEL, role)?
            .storage_commitment
            .as_ref()
    }

    fn commit_requested(
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
        let m = &mut self.g.commit;
        if m.commits.len() >= self.cfg.max_commitments {
            // Forget the oldest transaction.
            while let Some((old, _)) = m.commit_order.pop_front() {
                if m.commits.remove(&old).is_some() {
                    break;
                }
            }
        }
        m.commit_order.push_back((txn.clone(), e.ts_us));
        m.commits.insert(
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

    fn commit_reported(
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
            .and_then(|t| self.g.commit.commits.remove(t));
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
            self.g.commit.stores.remove(&r.sop_instance);
        }
        for f in &ds.failed {
            let Some(store) = self.g.commit.stores.remove(&f.sop_instance) else {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_wire::Side;

    fn cmd(command_field: u16, action: Option<u16>, event: Option<u16>) -> CommandEvent {
        let command = Command {
            command_field,
            affected_sop_class: Some(STORAGE_COMMITMENT_PUSH_MODEL.to_string()),
            has_dataset: true,
            message_id: Some(7),
            action_type_id: action,
            event_type_id: event,
            ..Command::default()
        };
        CommandEvent {
            pc_id: 1,
            abstract_syntax: None,
            command,
            latency_us: None,
        }
    }

    #[test]
    fn only_commitment_requests_and_reports_are_collected() {
        let e = Event {
            ts_us: 0,
            from: Side::Requestor,
            offset: 0,
            kind: dicomtap_wire::EventKind::ReleaseRq,
        };
        let mut c = Conn::default();
        request_seen(&mut c, &e, &cmd(field::N_ACTION_RQ, Some(2), None));
        request_seen(&mut c, &e, &cmd(field::N_EVENT_REPORT_RQ, None, Some(3)));
        assert!(c.collecting.is_empty());
        request_seen(&mut c, &e, &cmd(field::N_EVENT_REPORT_RQ, None, Some(2)));
        let col = c.collecting.get(&(Side::Requestor, 1));
        assert_eq!(col.map(|c| c.kind), Some(CollectKind::Report));
        assert_eq!(col.and_then(|c| c.message_id), Some(7));
    }
}
