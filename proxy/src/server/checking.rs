//! The conformance checker as one task fed through a channel: associations send it the
//! events its rules read (in batches, one message per chunk analysed) and their ends;
//! each association gets the findings its own events produced back on its own channel.
//! No lock is taken per event, so a thousand associations do not queue behind one mutex.

use std::collections::HashMap;

use dicomtap_analyzer::capture::ConnectionInfo;
use dicomtap_analyzer::conformance::{Checker, ConformanceFinding};
use dicomtap_analyzer::session::Session;
use dicomtap_wire::dimse::field;
use dicomtap_wire::{Event, EventKind, Side};
use tokio::sync::mpsc;

/// Batches waiting for the checker; a full queue makes analyses wait (never forwarding).
const QUEUE: usize = 1024;

/// Findings of one association's events, back to its analysis task.
pub(super) type FindingsTx = mpsc::UnboundedSender<Vec<ConformanceFinding>>;
pub(super) type FindingsRx = mpsc::UnboundedReceiver<Vec<ConformanceFinding>>;

/// What the checker task is given.
pub(super) enum CheckMsg {
    /// An association starts: its findings go to `tx`.
    Open { id: u64, tx: FindingsTx },
    /// Events of one association, in order.
    Events {
        conn: ConnectionInfo,
        items: Vec<Checked>,
    },
    /// The association ended; its findings channel is closed after the last of them.
    End {
        conn: ConnectionInfo,
        session: Box<Session>,
    },
}

/// One item of a [`CheckMsg::Events`] batch. Events are kept inline (boxing each would
/// allocate per event; clock moves are the rare case).
#[allow(clippy::large_enum_variant)]
pub(super) enum Checked {
    Event(Event),
    /// An event the rules do not read, later than any sent: it still moves the
    /// checker's clock (commitment deadlines), as it did when the checker saw every event.
    Clock(u64),
}

/// The sending side, held by the proxy's shared state.
#[derive(Clone)]
pub(super) struct CheckerHandle {
    tx: mpsc::Sender<CheckMsg>,
}

impl CheckerHandle {
    /// Starts the checker's task.
    pub(super) fn start(checker: Checker) -> CheckerHandle {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(checker, rx));
        CheckerHandle { tx }
    }

    /// Registers an association; its findings arrive on the receiver returned.
    pub(super) fn open(&self, id: u64) -> FindingsRx {
        let (ftx, frx) = mpsc::unbounded_channel();
        // Registration must come first: a full queue waits in a task of its own would
        // reorder it, so it is sent from the analysis task before anything else.
        if let Err(mpsc::error::TrySendError::Full(msg)) =
            self.tx.try_send(CheckMsg::Open { id, tx: ftx })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(msg).await;
            });
        }
        frx
    }

    pub(super) async fn send(&self, msg: CheckMsg) {
        let _ = self.tx.send(msg).await;
    }
}

async fn run(mut checker: Checker, mut rx: mpsc::Receiver<CheckMsg>) {
    let mut open: HashMap<u64, FindingsTx> = HashMap::new();
    // Events may only come after `Open` was seen; those of an association not (yet)
    // registered wait here in order (the registration was queued behind a full queue).
    let mut early: HashMap<u64, Vec<CheckMsg>> = HashMap::new();
    while let Some(msg) = rx.recv().await {
        match msg {
            CheckMsg::Open { id, tx } => {
                open.insert(id, tx);
                for m in early.remove(&id).unwrap_or_default() {
                    handle(&mut checker, &mut open, m);
                }
            }
            m => {
                let id = match &m {
                    CheckMsg::Events { conn, .. } | CheckMsg::End { conn, .. } => conn.id.0,
                    CheckMsg::Open { id, .. } => *id,
                };
                if open.contains_key(&id) {
                    handle(&mut checker, &mut open, m);
                } else {
                    early.entry(id).or_default().push(m);
                }
            }
        }
    }
}

fn handle(checker: &mut Checker, open: &mut HashMap<u64, FindingsTx>, msg: CheckMsg) {
    match msg {
        CheckMsg::Open { .. } => {}
        CheckMsg::Events { conn, items } => {
            let id = conn.id.0;
            for item in items {
                match item {
                    Checked::Event(ev) => checker.observe(&conn, &ev),
                    Checked::Clock(ts) => checker.advance_clock(ts),
                }
                let findings = checker.drain();
                if !findings.is_empty()
                    && let Some(tx) = open.get(&id)
                {
                    let _ = tx.send(findings);
                }
            }
        }
        CheckMsg::End { conn, session } => {
            checker.end_association(&conn, &session);
            let findings = checker.drain();
            // Dropping the sender tells the association all its findings are in.
            if let Some(tx) = open.remove(&conn.id.0)
                && !findings.is_empty()
            {
                let _ = tx.send(findings);
            }
        }
    }
}

/// Which engine events the rules read: all but the engine's own findings, gaps, resyncs
/// and data set bytes other than Storage Commitment ones (see [`CommitFragments`]).
pub(super) fn rules_read(ev: &Event) -> bool {
    !matches!(
        ev.kind,
        EventKind::Finding(_)
            | EventKind::Gap { .. }
            | EventKind::Omitted { .. }
            | EventKind::Resync { .. }
            | EventKind::DataFragment(_)
    )
}

/// The data sets whose fragments the Storage Commitment rules collect, by sender and
/// presentation context: those of N-ACTION and N-EVENT-REPORT requests of the Push Model
/// with a data set (a superset of what the rules keep; they ignore the rest).
#[derive(Default)]
pub(super) struct CommitFragments {
    open: Vec<(Side, u8)>,
}

impl CommitFragments {
    /// Whether the rules need `ev` as a Storage Commitment data set fragment.
    pub(super) fn wanted(&mut self, ev: &Event) -> bool {
        use dicomtap_analyzer::conformance::commit::STORAGE_COMMITMENT_PUSH_MODEL;
        match &ev.kind {
            EventKind::Command(c) => {
                let cmd = &c.command;
                let class = cmd.sop_class();
                let key = (ev.from, c.pc_id);
                if matches!(
                    cmd.command_field,
                    field::N_ACTION_RQ | field::N_EVENT_REPORT_RQ
                ) && cmd.has_dataset
                    && class == Some(STORAGE_COMMITMENT_PUSH_MODEL)
                    && !self.open.contains(&key)
                {
                    // Bounded: one per sender and context id.
                    self.open.push(key);
                }
                false
            }
            EventKind::DataFragment(f) => {
                let key = (ev.from, f.pc_id);
                let Some(i) = self.open.iter().position(|k| *k == key) else {
                    return false;
                };
                if f.last {
                    self.open.swap_remove(i);
                }
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_analyzer::conformance::commit::STORAGE_COMMITMENT_PUSH_MODEL;
    use dicomtap_wire::dimse::Command;
    use dicomtap_wire::event::{CommandEvent, DataFragment};

    fn ev(from: Side, kind: EventKind) -> Event {
        Event {
            ts_us: 0,
            from,
            offset: 0,
            kind,
        }
    }

    fn command(field: u16, class: &str) -> EventKind {
        EventKind::Command(CommandEvent {
            pc_id: 1,
            abstract_syntax: None,
            command: Command {
                command_field: field,
                requested_sop_class: Some(class.to_string()),
                has_dataset: true,
                ..Command::default()
            },
            latency_us: None,
        })
    }

    fn fragment(last: bool) -> EventKind {
        EventKind::DataFragment(DataFragment {
            pc_id: 1,
            bytes: vec![0; 4],
            last,
        })
    }

    #[test]
    fn only_storage_commitment_fragments_are_wanted_until_their_last() {
        let mut c = CommitFragments::default();
        let store = command(field::C_STORE_RQ, "1.2.840.10008.5.1.4.1.1.2");
        assert!(!c.wanted(&ev(Side::Requestor, store)));
        assert!(!c.wanted(&ev(Side::Requestor, fragment(false))));
        let action = command(field::N_ACTION_RQ, STORAGE_COMMITMENT_PUSH_MODEL);
        assert!(!c.wanted(&ev(Side::Requestor, action)));
        // The other side's fragments on the same context are not that data set.
        assert!(!c.wanted(&ev(Side::Acceptor, fragment(false))));
        assert!(c.wanted(&ev(Side::Requestor, fragment(false))));
        assert!(c.wanted(&ev(Side::Requestor, fragment(true))));
        assert!(
            !c.wanted(&ev(Side::Requestor, fragment(false))),
            "closed by its last"
        );
    }

    #[test]
    fn the_rules_read_every_kind_but_findings_gaps_resyncs_and_data() {
        assert!(rules_read(&ev(Side::Requestor, EventKind::ReleaseRq)));
        assert!(rules_read(&ev(
            Side::Acceptor,
            EventKind::StreamEnd {
                how: dicomtap_wire::StreamEnd::Close
            }
        )));
        assert!(!rules_read(&ev(
            Side::Requestor,
            EventKind::Gap { missing: 3 }
        )));
        assert!(!rules_read(&ev(
            Side::Requestor,
            EventKind::Resync { skipped: 3 }
        )));
        assert!(!rules_read(&ev(Side::Requestor, fragment(true))));
    }
}
