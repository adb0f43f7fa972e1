//! The analysis side of one association: the wire engine on the copies, the metrics,
//! the conformance checker, the event budget and the fan-out to subscribers, the
//! recorder and the fleet tap. Runs off the forwarding path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use dicomtap_analyzer::analysis::{ConnectionAnalysis, ConnectionSink};
use dicomtap_analyzer::capture::{ConnId, ConnectionInfo, RequestorBy};
use dicomtap_analyzer::conformance::ConformanceFinding;
use dicomtap_wire::{Event, Side, StreamEnd};
use tokio::sync::mpsc;

use super::Shared;
use super::budget::{EventBudget, Held};
use super::checking::{CheckMsg, Checked, CommitFragments, FindingsRx, rules_read};
use super::kinds::Outcome;
use crate::events::{ConformanceEvent, Notice, ProxyEvent, ProxyEventKind, ProxyNotice};
use crate::metrics::AssociationObserver;
use crate::recorder::{RecordMsg, now_us};

pub(super) struct AnalysisGuard(Arc<Shared>);

impl Drop for AnalysisGuard {
    fn drop(&mut self) {
        self.0.analyses.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) enum AnalysisMsg {
    Data {
        from: Side,
        ts_us: u64,
        bytes: Bytes,
        gap_before: u64,
    },
    End {
        from: Side,
        ts_us: u64,
        how: StreamEnd,
    },
    Notice(ProxyNotice),
    Upstream(SocketAddr),
    Outcome(Outcome),
}

/// Where an event the analysis took goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Nowhere but the checker.
    None,
    /// A Storage Commitment data set fragment: to the subscribers and the fleet tap only.
    Subscribers,
    /// The event log (and subscribers).
    Log,
}

/// One association's consumer of engine events: metrics, the checker's batch, the
/// budgeted event log and the fan-out.
struct Live<'a> {
    shared: &'a Shared,
    id: u64,
    client: SocketAddr,
    upstream: Option<SocketAddr>,
    /// The recorder or the fleet tap gets events.
    kept: bool,
    /// Someone subscribed to the events, as of the message being analysed: asked once
    /// per message, as asking takes the broadcast channel's lock, which every association
    /// shares.
    subscribed: bool,
    observer: AssociationObserver,
    budget: EventBudget,
    commit_dataset: CommitDataset,
    /// For the recorder, per message; reused.
    out: Vec<ProxyEvent>,
    /// Storage Commitment data set fragments, for the fleet tap only (not logged).
    tap_only: Vec<ProxyEvent>,
    /// The checker's share of this association's events, sent once per message analysed.
    checks: Option<Checks>,
    /// What `look` decided for the event `take` gets: its route, and whether the checker
    /// wants it too.
    route: (Route, bool),
}

/// What is sent to the checker of one association's events.
struct Checks {
    items: Vec<Checked>,
    commit: CommitFragments,
    /// Nothing sent yet: the first event goes whatever it is (the checker learns of the
    /// association from it, as it did when it saw every event).
    first: bool,
    /// Latest time of the events sent (or clock moves).
    last_ts: u64,
}

impl Checks {
    /// Whether the checker reads `ev`; for one it does not, moves its clock if needed.
    fn wants(&mut self, ev: &Event) -> bool {
        let commit = self.commit.wanted(ev);
        let wanted = self.first || commit || rules_read(ev);
        if wanted {
            self.first = false;
            self.last_ts = self.last_ts.max(ev.ts_us);
        } else if ev.ts_us > self.last_ts {
            self.last_ts = ev.ts_us;
            self.items.push(Checked::Clock(ev.ts_us));
        }
        wanted
    }
}

impl Live<'_> {
    /// The event for the subscribers, the recorder and the fleet tap; `None` when none
    /// would see it (no recording, no fleet and nobody subscribed: the usual case outside
    /// tests and the demo), which spares building and moving it.
    fn emit(&self, kind: ProxyEventKind) -> Option<ProxyEvent> {
        let subscribed = self.subscribed;
        if !subscribed && !self.kept {
            return None;
        }
        let ev = ProxyEvent {
            association: self.id,
            client: self.client,
            upstream: self.upstream,
            kind,
        };
        if subscribed {
            let _ = self.shared.events.send(ev.clone());
        }
        self.kept.then_some(ev)
    }

    fn held(&self, why: Held) {
        self.shared
            .metrics
            .event_log_suppressed_total
            .with_label_values(&[why.label()])
            .inc();
    }

    /// The `events_suppressed` line, when something was held back.
    fn summary(&mut self) {
        if let Some(s) = self.budget.take_summary() {
            self.budget.notice();
            let kind = ProxyEventKind::Proxy(ProxyNotice {
                ts_us: now_us(),
                what: Notice::EventsSuppressed(s),
            });
            let ev = self.emit(kind);
            self.out.extend(ev);
        }
    }

    fn notice(&mut self, n: ProxyNotice) {
        let metrics = &self.shared.metrics;
        match &n.what {
            Notice::UpstreamError { kind, .. } => {
                metrics
                    .upstream_errors_total
                    .with_label_values(&[kind.as_str()])
                    .inc();
            }
            Notice::ProxyAbort { .. } => {
                metrics.aborts_total.with_label_values(&["proxy"]).inc();
            }
            Notice::Closed { .. } => self.summary(),
            _ => {}
        }
        self.budget.notice();
        let ev = self.emit(ProxyEventKind::Proxy(n));
        self.out.extend(ev);
    }

    /// Findings the checker returned for this association's events.
    fn findings(&mut self, findings: Vec<ConformanceFinding>) {
        for f in findings {
            let kind = format!("conformance:{}", f.rule);
            let ev = conformance_event(self.shared, f);
            match self.budget.finding(&kind) {
                Ok(()) => {
                    let ev = self.emit(ev);
                    self.out.extend(ev);
                }
                Err(why) => self.held(why),
            }
        }
    }

    /// Hands the events gathered to the checker, the fleet tap and the recorder.
    async fn flush(&mut self, info: &ConnectionInfo) {
        if let (Some(checks), Some(checker)) = (self.checks.as_mut(), &self.shared.checker)
            && !checks.items.is_empty()
        {
            let items = std::mem::take(&mut checks.items);
            checker
                .send(CheckMsg::Events {
                    conn: info.clone(),
                    items,
                })
                .await;
        }
        if let Some(tap) = &self.shared.tap {
            for ev in self.tap_only.drain(..) {
                let _ = tap.send(ev).await;
            }
        }
        for ev in self.out.drain(..) {
            deliver(self.shared, ev).await;
        }
    }
}

impl ConnectionSink for Live<'_> {
    fn look(&mut self, _conn: &ConnectionInfo, ev: &Event) -> bool {
        self.observer.observe(ev);
        let check = self.checks.as_mut().is_some_and(|c| c.wants(ev));
        // Data set bytes are for the rules only; they are not part of the event log.
        // Those of Storage Commitment data sets (UIDs only) also go to subscribers,
        // for the fleet's checks across instances (docs/fleet.md).
        let subscribed = self.subscribed;
        let to_subscribers =
            self.commit_dataset.track(ev) && (subscribed || self.shared.tap.is_some());
        let logged = !matches!(ev.kind, dicomtap_wire::EventKind::DataFragment(_))
            && (self.kept || subscribed);
        let route = if to_subscribers {
            Route::Subscribers
        } else if !logged {
            Route::None
        } else if let Err(why) = self.budget.wire(ev) {
            self.held(why);
            Route::None
        } else {
            Route::Log
        };
        self.route = (route, check);
        route != Route::None || check
    }

    fn take(&mut self, _conn: &ConnectionInfo, ev: Event) {
        let (route, check) = self.route;
        if check && let Some(checks) = self.checks.as_mut() {
            if route == Route::None {
                checks.items.push(Checked::Event(ev));
                return;
            }
            checks.items.push(Checked::Event(ev.clone()));
        }
        match route {
            Route::None => {}
            Route::Subscribers => {
                let ev = ProxyEvent {
                    association: self.id,
                    client: self.client,
                    upstream: self.upstream,
                    kind: ProxyEventKind::Wire(ev),
                };
                if self.shared.tap.is_some() {
                    self.tap_only.push(ev.clone());
                }
                let _ = self.shared.events.send(ev);
            }
            Route::Log => {
                let kind = ProxyEventKind::Wire(self.budget.trim(ev));
                let ev = self.emit(kind);
                self.out.extend(ev);
            }
        }
    }
}

/// The next findings of this association, or never once all are in (or without a checker).
async fn next_findings(rx: &mut Option<FindingsRx>) -> Option<Vec<ConformanceFinding>> {
    match rx {
        Some(r) => {
            let got = r.recv().await;
            if got.is_none() {
                *rx = None;
            }
            got
        }
        None => std::future::pending().await,
    }
}

/// The analysis side of one association: its [`ConnectionAnalysis`] fed the copies, and
/// the events to the metrics, the checker, the event log and the subscribers. `listen` is
/// the acceptor's address as the client sees it, until the upstream is known.
pub(super) async fn analyse(
    id: u64,
    client: SocketAddr,
    listen: SocketAddr,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<AnalysisMsg>,
) {
    let _guard = AnalysisGuard(shared.clone());
    let info = ConnectionInfo {
        id: ConnId(id),
        client,
        server: listen,
        first_ts_us: now_us(),
        requestor_known_by: RequestorBy::SynSeen,
    };
    let mut conn = ConnectionAnalysis::new(shared.engine.clone(), info);
    // The session is only kept for the conformance rules, which read it at the end.
    if shared.checker.is_none() {
        conn = conn.without_session();
    }
    // PDU sizes for the metrics come from the engine's own framing.
    conn.conversation_mut().keep_pdu_headers();
    let mut findings_rx = shared.checker.as_ref().map(|c| c.open(id));
    let mut live = Live {
        shared: &shared,
        id,
        client,
        upstream: None,
        kept: shared.recorder.is_some() || shared.tap.is_some(),
        subscribed: false,
        observer: AssociationObserver::new(shared.metrics.clone()),
        budget: EventBudget::new(),
        commit_dataset: CommitDataset::default(),
        out: Vec::new(),
        tap_only: Vec::new(),
        checks: shared.checker.as_ref().map(|_| Checks {
            items: Vec::new(),
            commit: CommitFragments::default(),
            first: true,
            last_ts: 0,
        }),
        route: (Route::None, false),
    };
    loop {
        // Without statements there are no findings to wait for: no `select!` per message.
        let msg = if findings_rx.is_none() {
            rx.recv().await
        } else {
            tokio::select! {
                biased;
                Some(findings) = next_findings(&mut findings_rx) => {
                    live.subscribed = shared.events.receiver_count() > 0;
                    live.findings(findings);
                    live.flush(conn.info()).await;
                    continue;
                }
                msg = rx.recv() => msg,
            }
        };
        let Some(msg) = msg else { break };
        live.subscribed = shared.events.receiver_count() > 0;
        match msg {
            AnalysisMsg::Data {
                from,
                ts_us,
                bytes,
                gap_before,
            } => {
                live.budget.traffic(bytes.len() as u64);
                if gap_before > 0 {
                    conn.gap(from, ts_us, gap_before);
                }
                conn.feed(from, ts_us, &bytes);
            }
            AnalysisMsg::End { from, ts_us, how } => conn.end(from, ts_us, how),
            AnalysisMsg::Notice(n) => live.notice(n),
            AnalysisMsg::Upstream(u) => {
                live.upstream = Some(u);
                conn.set_server(u);
            }
            AnalysisMsg::Outcome(o) => live.observer.outcome(o.as_str()),
        }
        // Events are looked at in place and only taken when someone gets them.
        conn.drain(&mut live);
        let observer = &mut live.observer;
        conn.conversation_mut()
            .drain_pdu_headers(|t, len| observer.observe_pdu(t, len));
        live.flush(conn.info()).await;
    }
    live.observer.outcome(Outcome::NoResponse.as_str());
    live.subscribed = shared.events.receiver_count() > 0;
    live.flush(conn.info()).await;
    let (info, session) = conn.finish();
    if let (Some(checker), Some(session)) = (&shared.checker, session) {
        checker
            .send(CheckMsg::End {
                conn: info,
                session: Box::new(session),
            })
            .await;
        // Until the checker has handed back the last findings of this association.
        while let Some(findings) = next_findings(&mut findings_rx).await {
            live.findings(findings);
        }
    }
    // Held back after `closed` (or no `closed` came): told last.
    live.summary();
    shared
        .metrics
        .event_log_lines
        .observe(live.budget.lines_logged() as f64);
    for ev in live.out.drain(..) {
        deliver(&shared, ev).await;
    }
}

/// Hands an event to the fleet tap and to the recorder, waiting for room in each (this
/// runs on the analysis task: forwarding does not wait).
pub(super) async fn deliver(shared: &Shared, ev: ProxyEvent) {
    match (&shared.tap, &shared.recorder) {
        (Some(tap), Some(rec)) => {
            let _ = tap.send(ev.clone()).await;
            rec.send_wait(RecordMsg::Event(Box::new(ev))).await;
        }
        (Some(tap), None) => {
            let _ = tap.send(ev).await;
        }
        (None, Some(rec)) => {
            rec.send_wait(RecordMsg::Event(Box::new(ev))).await;
        }
        (None, None) => {}
    }
}

/// Follows which data set of an association is a Storage Commitment one (N-ACTION-RQ or
/// N-EVENT-REPORT-RQ of the Push Model), so its fragments reach the event subscribers.
#[derive(Default)]
pub(super) struct CommitDataset {
    current: Option<(u8, dicomtap_wire::Side)>,
}

impl CommitDataset {
    /// Whether `ev` is a fragment of a Storage Commitment data set.
    fn track(&mut self, ev: &dicomtap_wire::Event) -> bool {
        use dicomtap_analyzer::conformance::commit::STORAGE_COMMITMENT_PUSH_MODEL;
        match &ev.kind {
            dicomtap_wire::EventKind::Command(c) => {
                let cmd = &c.command;
                let class = cmd
                    .requested_sop_class
                    .as_deref()
                    .or(cmd.affected_sop_class.as_deref())
                    .or(c.abstract_syntax.as_deref());
                if matches!(cmd.command, "N-ACTION-RQ" | "N-EVENT-REPORT-RQ")
                    && cmd.has_dataset
                    && class == Some(STORAGE_COMMITMENT_PUSH_MODEL)
                {
                    self.current = Some((c.pc_id, ev.from));
                } else if self.current.is_some_and(|(_, side)| side == ev.from) {
                    self.current = None;
                }
                false
            }
            dicomtap_wire::EventKind::DataFragment(f) => {
                let ours = self.current == Some((f.pc_id, ev.from));
                if ours && f.last {
                    self.current = None;
                }
                ours
            }
            _ => false,
        }
    }
}

/// Counts a conformance finding and turns it into an event-log entry.
pub(super) fn conformance_event(shared: &Shared, finding: ConformanceFinding) -> ProxyEventKind {
    shared
        .metrics
        .conformance_findings_total
        .with_label_values(&[
            &finding.device,
            &finding.rule.to_string(),
            &finding.severity.to_string(),
        ])
        .inc();
    ProxyEventKind::Conformance(ConformanceEvent {
        ts_us: finding.evidence.ts_us,
        event: "conformance_finding",
        finding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicomtap_wire::EventKind;

    fn ev(ts_us: u64, kind: EventKind) -> Event {
        Event {
            ts_us,
            from: Side::Requestor,
            offset: 0,
            kind,
        }
    }

    #[test]
    fn events_the_rules_skip_still_move_the_checker_clock_once() {
        let mut c = Checks {
            items: Vec::new(),
            commit: CommitFragments::default(),
            first: true,
            last_ts: 0,
        };
        // The first event goes whatever it is: the checker learns of the association.
        assert!(c.wants(&ev(5, EventKind::Gap { missing: 1 })));
        assert!(c.wants(&ev(10, EventKind::ReleaseRq)));
        assert!(!c.wants(&ev(10, EventKind::Gap { missing: 1 })));
        assert!(c.items.is_empty(), "no later time: no clock move");
        assert!(!c.wants(&ev(20, EventKind::Resync { skipped: 1 })));
        assert!(!c.wants(&ev(15, EventKind::Resync { skipped: 1 })));
        assert!(matches!(c.items.as_slice(), [Checked::Clock(20)]));
    }
}
