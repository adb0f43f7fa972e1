//! The analysis side of one association: the wire engine on the copies, the metrics,
//! the conformance checker, the event budget and the fan-out to subscribers, the
//! recorder and the fleet tap. Runs off the forwarding path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use dicomtap_analyzer::capture::{ConnId, ConnectionInfo, RequestorBy};
use dicomtap_analyzer::conformance::ConformanceFinding;
use dicomtap_analyzer::session::SessionBuilder;
use dicomtap_wire::{Conversation, Side, StreamEnd};
use tokio::sync::mpsc;

use super::Shared;
use super::budget::{EventBudget, Held};
use super::framing::PduFramer;
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

/// The analysis side of one association: the wire engine, metrics, event fan-out.
pub(super) async fn analyse(
    id: u64,
    client: SocketAddr,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<AnalysisMsg>,
) {
    let _guard = AnalysisGuard(shared.clone());
    let mut conv = Conversation::new(shared.engine.clone());
    let mut observer = AssociationObserver::new(shared.metrics.clone());
    // Only kept for the conformance rules, which read sessions when associations end.
    let mut session = shared
        .checker
        .as_ref()
        .map(|_| SessionBuilder::new(id, Some(client), None));
    let mut conn_info = ConnectionInfo {
        id: ConnId(id),
        client,
        server: client,
        first_ts_us: now_us(),
        requestor_known_by: RequestorBy::SynSeen,
    };
    let mut framers = [PduFramer::new(), PduFramer::new()];
    let mut upstream = None;
    let kept = shared.recorder.is_some() || shared.tap.is_some();
    // The event for the subscribers, the recorder and the fleet tap; `None` when none
    // would see it (no recording, no fleet and nobody subscribed: the usual case outside
    // tests and the demo), which spares building and moving it.
    let emit = |kind: ProxyEventKind, upstream: Option<SocketAddr>| {
        let subscribed = shared.events.receiver_count() > 0;
        if !subscribed && !kept {
            return None;
        }
        let ev = ProxyEvent {
            association: id,
            client,
            upstream,
            kind,
        };
        if subscribed {
            let _ = shared.events.send(ev.clone());
        }
        kept.then_some(ev)
    };
    // For the recorder, per message; reused.
    let mut out: Vec<ProxyEvent> = Vec::new();
    // Storage Commitment data set fragments, for the fleet tap only (not logged).
    let mut tap_only: Vec<ProxyEvent> = Vec::new();
    let mut budget = EventBudget::new();
    let held = |why: Held| {
        shared
            .metrics
            .event_log_suppressed_total
            .with_label_values(&[why.label()])
            .inc();
    };
    let summary = |budget: &mut EventBudget| {
        budget.take_summary().map(|s| {
            ProxyEventKind::Proxy(ProxyNotice {
                ts_us: now_us(),
                what: Notice::EventsSuppressed(s),
            })
        })
    };
    let mut commit_dataset = CommitDataset::default();
    while let Some(msg) = rx.recv().await {
        match msg {
            AnalysisMsg::Data {
                from,
                ts_us,
                bytes,
                gap_before,
            } => {
                let i = from.index();
                budget.traffic(bytes.len() as u64);
                if gap_before > 0 {
                    conv.gap(from, ts_us, gap_before);
                    framers[i] = PduFramer::new();
                }
                framers[i].scan(&bytes, |t, len| observer.observe_pdu(t, len));
                conv.feed(from, ts_us, &bytes);
            }
            AnalysisMsg::End { from, ts_us, how } => conv.end(from, ts_us, how),
            AnalysisMsg::Notice(n) => {
                match &n.what {
                    Notice::UpstreamError { kind, .. } => {
                        shared
                            .metrics
                            .upstream_errors_total
                            .with_label_values(&[kind.as_str()])
                            .inc();
                    }
                    Notice::ProxyAbort { .. } => {
                        shared
                            .metrics
                            .aborts_total
                            .with_label_values(&["proxy"])
                            .inc();
                    }
                    Notice::Closed { .. } => {
                        if let Some(s) = summary(&mut budget) {
                            budget.notice();
                            out.extend(emit(s, upstream));
                        }
                    }
                    _ => {}
                }
                budget.notice();
                out.extend(emit(ProxyEventKind::Proxy(n), upstream));
            }
            AnalysisMsg::Upstream(u) => {
                upstream = Some(u);
                conn_info.server = u;
            }
            AnalysisMsg::Outcome(o) => observer.outcome(o.as_str()),
        }
        // Events are looked at in place and only taken when someone gets them.
        while let Some(ev) = conv.peek_event() {
            observer.observe(ev);
            if let Some(checker) = &shared.checker {
                if let Some(s) = session.as_mut() {
                    s.observe(ev);
                }
                let findings = match checker.lock() {
                    Ok(mut c) => {
                        c.observe(&conn_info, ev);
                        c.drain()
                    }
                    Err(_) => Vec::new(),
                };
                for f in findings {
                    let kind = format!("conformance:{}", f.rule);
                    let ev = conformance_event(&shared, f);
                    match budget.finding(&kind) {
                        Ok(()) => out.extend(emit(ev, upstream)),
                        Err(why) => held(why),
                    }
                }
            }
            // Data set bytes are for the rules only; they are not part of the event log.
            // Those of Storage Commitment data sets (UIDs only) also go to subscribers,
            // for the fleet's checks across instances (docs/fleet.md).
            let to_subscribers = commit_dataset.track(ev)
                && (shared.events.receiver_count() > 0 || shared.tap.is_some());
            let logged = !matches!(ev.kind, dicomtap_wire::EventKind::DataFragment(_))
                && (kept || shared.events.receiver_count() > 0);
            if to_subscribers {
                if let Some(ev) = conv.poll() {
                    let ev = ProxyEvent {
                        association: id,
                        client,
                        upstream,
                        kind: ProxyEventKind::Wire(ev),
                    };
                    if shared.tap.is_some() {
                        tap_only.push(ev.clone());
                    }
                    let _ = shared.events.send(ev);
                }
            } else if !logged {
                conv.skip();
            } else if let Err(why) = budget.wire(ev) {
                held(why);
                conv.skip();
            } else if let Some(ev) = conv.poll() {
                out.extend(emit(ProxyEventKind::Wire(budget.trim(ev)), upstream));
            }
        }
        if let Some(tap) = &shared.tap {
            for ev in tap_only.drain(..) {
                let _ = tap.send(ev).await;
            }
        }
        for ev in out.drain(..) {
            deliver(&shared, ev).await;
        }
    }
    observer.outcome(Outcome::NoResponse.as_str());
    if let (Some(checker), Some(s)) = (&shared.checker, session) {
        let findings = match checker.lock() {
            Ok(mut c) => {
                c.end_association(&conn_info, &s.finish());
                c.drain()
            }
            Err(_) => Vec::new(),
        };
        for f in findings {
            let kind = format!("conformance:{}", f.rule);
            let ev = conformance_event(&shared, f);
            match budget.finding(&kind) {
                Ok(()) => out.extend(emit(ev, upstream)),
                Err(why) => held(why),
            }
        }
    }
    // Held back after `closed` (or no `closed` came): told last.
    if let Some(s) = summary(&mut budget) {
        budget.notice();
        out.extend(emit(s, upstream));
    }
    shared
        .metrics
        .event_log_lines
        .observe(budget.lines_logged() as f64);
    for ev in out.drain(..) {
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
