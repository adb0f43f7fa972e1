//! Forwarding: one pump per direction writes the bytes on unchanged, then taps a copy;
//! the ARTIM and idle watches and the drain cut end it; A-ABORTs go where a PDU boundary
//! allows.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use dicomtap_wire::{Side, StreamEnd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::association::Association;
use super::chunks::ChunkPool;
use super::framing::PduFramer;
use super::kinds::UpstreamErrorKind;
use crate::events::Notice;
use crate::recorder::now_us;
use crate::tls::{Conn, ConnRead, ConnWrite};

/// How one direction ended.
#[derive(Debug)]
pub(super) enum PumpEnd {
    /// The sender closed its side; the FIN was passed on.
    Fin,
    /// Reading from the sender failed (reset).
    ReadFailed,
    /// Writing to the receiver failed (it is gone).
    WriteFailed,
}

pub(super) async fn pump(
    rd: &mut ConnRead,
    wr: &mut ConnWrite,
    from: Side,
    assoc: &Association,
    framer: &mut PduFramer,
    buf_size: usize,
) -> PumpEnd {
    let mut pool = ChunkPool::new(buf_size);
    let mut rq_pending = from == Side::Requestor && !assoc.rq_done.load(Ordering::Acquire);
    loop {
        match rd.read_buf(pool.buffer()).await {
            Ok(0) => {
                let _ = wr.shutdown().await;
                assoc.end(from, StreamEnd::Close).await;
                return PumpEnd::Fin;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(assoc = assoc.id, "read from {from}: {e}");
                assoc.end(from, StreamEnd::Reset).await;
                return PumpEnd::ReadFailed;
            }
        };
        let ts = now_us();
        let chunk = pool.take();
        if let Err(e) = wr.write_all(&chunk).await {
            tracing::debug!(assoc = assoc.id, "write to {}: {e}", from.peer());
            return PumpEnd::WriteFailed;
        }
        // Only the boundaries matter here (where an A-ABORT may go).
        framer.scan(&chunk, |_, _| {});
        if rq_pending && framer.first_complete() {
            rq_pending = false;
            assoc.rq_done.store(true, Ordering::Release);
        }
        assoc.tap(from, ts, chunk).await;
    }
}

/// Ends when the ARTIM deadline passes before the client's first PDU is complete.
pub(super) async fn rq_watch(assoc: &Association) {
    tokio::time::sleep_until(assoc.rq_deadline()).await;
    if assoc.rq_done.load(Ordering::Acquire) {
        std::future::pending::<()>().await;
    }
}

pub(super) async fn idle_watch(assoc: &Association, idle: Option<Duration>) {
    let Some(idle) = idle else {
        return std::future::pending().await;
    };
    loop {
        let last = Duration::from_millis(assoc.last_activity_ms.load(Ordering::Relaxed));
        let since = assoc.started.elapsed().saturating_sub(last);
        if since >= idle {
            return;
        }
        tokio::time::sleep(idle - since + Duration::from_millis(5)).await;
    }
}

/// A future polled only on its first poll and after its own wake-ups.
///
/// `forward` waits on both pumps, the idle watch and the drain cut in one `select!`, which
/// polls every branch whenever the task is woken: each chunk forwarded one way also polled
/// the other pump, the idle timer and the cut watch, a fixed cost per chunk that showed in
/// the per-message profile. Each branch gets its own waker here, which notes the wake-up
/// before waking the task.
pub(super) struct WhenWoken<F> {
    fut: F,
    wakeup: Arc<Wakeup>,
    /// `wakeup` as a waker, made once.
    waker: Waker,
}

pub(super) struct Wakeup {
    woken: AtomicBool,
    /// The task's waker as of the last poll.
    task: Mutex<Option<Waker>>,
}

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Noted before the task is woken, so the poll it leads to sees it.
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = task.as_ref() {
            t.wake_by_ref();
        }
    }
}

impl<F: Future + Unpin> WhenWoken<F> {
    fn new(fut: F) -> Self {
        let wakeup = Arc::new(Wakeup {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        let waker = Waker::from(wakeup.clone());
        WhenWoken { fut, wakeup, waker }
    }
}

impl<F: Future + Unpin> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        {
            let mut task = this
                .wakeup
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        if !this.wakeup.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.fut).poll(&mut Context::from_waker(&this.waker))
    }
}

/// Forwards both directions until both are closed, or one fails (then the other side
/// gets an A-ABORT where a PDU boundary allows, and is closed).
pub(super) async fn forward(assoc: &Association, client: Conn, upstream: Conn, pre: Vec<u8>) {
    let limits = &assoc.shared.limits;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let mut framers = [PduFramer::new(), PduFramer::new()];
    let mut ended = [false, false];
    if !pre.is_empty() {
        let ts = now_us();
        if uw.write_all(&pre).await.is_err() {
            assoc.notice(Notice::UpstreamError {
                kind: UpstreamErrorKind::Reset.as_str().into(),
                message: "upstream closed before the A-ASSOCIATE-RQ was forwarded".into(),
            });
        }
        framers[0].scan(&pre, |_, _| {});
        if framers[0].first_complete() {
            assoc.rq_done.store(true, Ordering::Release);
        }
        assoc.tap(Side::Requestor, ts, Bytes::from(pre)).await;
    }
    enum Stop {
        Done,
        Failed(Side, PumpEnd),
        Idle,
        RqTimeout,
        Cut,
    }
    let stop = {
        let [f0, f1] = &mut framers;
        let bs = limits.read_buffer_bytes;
        let c2u = pump(&mut cr, &mut uw, Side::Requestor, assoc, f0, bs);
        let u2c = pump(&mut ur, &mut cw, Side::Acceptor, assoc, f1, bs);
        let idle = idle_watch(assoc, limits.idle_timeout);
        let artim = rq_watch(assoc);
        let mut cut_rx = assoc.shared.cut.subscribe();
        let cut = async move {
            if cut_rx.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(c2u, u2c, idle, artim, cut);
        let (mut c2u, mut u2c) = (WhenWoken::new(c2u), WhenWoken::new(u2c));
        let (mut idle, mut cut) = (WhenWoken::new(idle), WhenWoken::new(cut));
        let mut artim = WhenWoken::new(artim);
        loop {
            if ended[0] && ended[1] {
                break Stop::Done;
            }
            tokio::select! {
                r = &mut c2u, if !ended[0] => {
                    ended[0] = true;
                    if !matches!(r, PumpEnd::Fin) { break Stop::Failed(Side::Requestor, r); }
                }
                r = &mut u2c, if !ended[1] => {
                    ended[1] = true;
                    if !matches!(r, PumpEnd::Fin) { break Stop::Failed(Side::Acceptor, r); }
                }
                _ = &mut idle => break Stop::Idle,
                _ = &mut artim => break Stop::RqTimeout,
                _ = &mut cut => break Stop::Cut,
            }
        }
    };
    let abort = dicomtap_wire::encode::abort(2, 0);
    match stop {
        Stop::Done => assoc.closed("closed"),
        Stop::Failed(side, how) => {
            // Who is gone: the sender whose read failed, or the receiver we could not write to.
            let gone = match how {
                PumpEnd::ReadFailed => side,
                _ => side.peer(),
            };
            let survivor = gone.peer();
            let (kind, text) = match gone {
                Side::Acceptor => (UpstreamErrorKind::Reset, "upstream reset the connection"),
                Side::Requestor => (
                    UpstreamErrorKind::ClientReset,
                    "client reset the connection",
                ),
            };
            if gone == Side::Acceptor {
                assoc.notice(Notice::UpstreamError {
                    kind: kind.as_str().into(),
                    message: text.into(),
                });
            }
            // The survivor receives what `gone` sent: that direction's framer.
            let boundary = framers[gone.index()].at_boundary();
            let writer = match survivor {
                Side::Requestor => &mut cw,
                Side::Acceptor => &mut uw,
            };
            let can_write = matches!(how, PumpEnd::ReadFailed) || !ended[gone.index()];
            if boundary
                && can_write
                && tokio::time::timeout(Duration::from_secs(2), writer.write_all(&abort))
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                assoc.notice(Notice::ProxyAbort {
                    to: survivor,
                    why: text.into(),
                });
                assoc
                    .tap(gone, now_us(), Bytes::copy_from_slice(&abort))
                    .await;
            }
            let _ = writer.shutdown().await;
            if !ended[gone.index()] && !matches!(how, PumpEnd::ReadFailed) {
                assoc.end(gone, StreamEnd::Reset).await;
            }
            if !ended[survivor.index()] {
                assoc.end(survivor, StreamEnd::Close).await;
            }
            assoc.closed(text);
        }
        Stop::RqTimeout => {
            // PS3.8 9.2.3 (AA-2): the ARTIM timer expired before the A-ASSOCIATE-RQ was
            // whole; the transport connection is closed, no PDU is sent (there is no
            // association to abort). The upstream had at most part of the RQ.
            tracing::warn!(
                assoc = assoc.id,
                client = %assoc.client,
                "no complete A-ASSOCIATE-RQ within {:?}: closed",
                limits.associate_rq_timeout
            );
            assoc.count_rq_timeout();
            let _ = uw.shutdown().await;
            let _ = cw.shutdown().await;
            for side in [Side::Requestor, Side::Acceptor] {
                if !ended[side.index()] {
                    assoc.end(side, StreamEnd::Close).await;
                }
            }
            assoc.closed("association request timeout");
        }
        Stop::Idle | Stop::Cut => {
            let why = match stop {
                Stop::Idle => {
                    assoc
                        .shared
                        .metrics
                        .connections_shed_total
                        .with_label_values(&["idle_timeout"])
                        .inc();
                    "idle timeout"
                }
                _ => "cut at drain",
            };
            // At the drain's end the time is already spent: a short grace for the A-ABORT.
            let grace = match stop {
                Stop::Cut => Duration::from_millis(250),
                _ => Duration::from_secs(2),
            };
            for (side, writer) in [(Side::Requestor, &mut uw), (Side::Acceptor, &mut cw)] {
                // `side`'s bytes go through `writer`; abort the receiver if between PDUs.
                if !ended[side.index()] && framers[side.index()].at_boundary() {
                    let ok = tokio::time::timeout(grace, writer.write_all(&abort))
                        .await
                        .is_ok_and(|r| r.is_ok());
                    if ok {
                        assoc.notice(Notice::ProxyAbort {
                            to: side.peer(),
                            why: why.into(),
                        });
                        assoc
                            .tap(side, now_us(), Bytes::copy_from_slice(&abort))
                            .await;
                    }
                }
                // A peer that reads nothing must not hold the close (nor the drain) up.
                let _ = tokio::time::timeout(grace, writer.shutdown()).await;
            }
            for side in [Side::Requestor, Side::Acceptor] {
                if !ended[side.index()] {
                    assoc.end(side, StreamEnd::Close).await;
                }
            }
            assoc.closed(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set (it wakes itself through the waker it
    /// was last given when `ready` is set from outside).
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if let Ok(mut w) = self.waker.lock() {
                *w = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn when_woken_polls_a_branch_only_after_its_own_wake_up() {
        let (polls, ready) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waker = Arc::new(Mutex::new(None::<Waker>));
        let probe = Probe {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: waker.clone(),
        };
        tokio::pin!(probe);
        let mut quiet = WhenWoken::new(probe);
        let mut ticks = 0;
        let done = loop {
            tokio::select! {
                () = &mut quiet => break ticks,
                () = tokio::time::sleep(Duration::from_millis(1)) => {
                    ticks += 1;
                    if ticks == 5 {
                        // Woken from elsewhere, as a socket would.
                        ready.store(true, Ordering::SeqCst);
                        let w = waker.lock().ok().and_then(|w| w.clone());
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                }
            }
        };
        assert_eq!(done, 5);
        // The first poll and the one after its wake-up; none for the other branch's ticks.
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}
