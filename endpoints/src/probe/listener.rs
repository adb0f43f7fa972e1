//! The probe's own acceptor: the C-MOVE destination and the place a Storage Commitment
//! SCP may send its N-EVENT-REPORT on a new association. It accepts any AE title and any
//! abstract syntax in Implicit or Explicit VR Little Endian (anything else, first
//! proposed, for storage), answers C-STORE, N-EVENT-REPORT and C-ECHO with Success, and
//! keeps what arrived.
//!
//! With a rustls server configuration ([`Listener::start_tls`]) it speaks DICOM TLS only:
//! each connection's handshake must complete within [`HANDSHAKE_TIMEOUT`]; a failed one is
//! logged and kept ([`Listener::handshake_failures`]) and the connection closed, while the
//! listener goes on accepting. What arrived over TLS carries the negotiated version and
//! cipher suite ([`Received::tls`]).
//!
//! For the slow-response measurement of the timeouts check it can also hold its
//! C-STORE-RSPs back ([`Listener::hold_store_responses`]) and note how long the device,
//! as the SCU of C-MOVE sub-operations, waits before it gives up.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dataset::{EXPLICIT_LE, IMPLICIT_LE};
use super::link::{Incoming, Link, Message, TlsInfo, encode_accept};
use dicomtap_wire::encode::RELEASE_RP;

/// Longest TLS handshake the listener waits for before it closes the connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A message the listener received.
#[derive(Debug, Clone)]
pub struct Received {
    pub calling_ae: String,
    pub transfer_syntax: String,
    pub message: Message,
    /// What the TLS handshake of its association negotiated (`None`: plain TCP).
    pub tls: Option<TlsInfo>,
}

/// A connection to the listener whose TLS handshake failed.
#[derive(Debug, Clone)]
pub struct HandshakeFailed {
    pub peer: SocketAddr,
    pub reason: String,
}

/// A C-STORE-RSP the listener held back, and what the device did meanwhile.
#[derive(Debug, Clone)]
pub struct Held {
    pub calling_ae: String,
    /// From the complete C-STORE-RQ to the device's reaction (or the end of the hold).
    pub waited: Duration,
    /// `Some(reaction)` when the device gave up (A-ABORT, A-RELEASE-RQ, close); `None`
    /// when it still waited at the end of the hold (the response was then sent).
    pub gave_up: Option<String>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    cond: Condvar,
    /// Longest hold of C-STORE-RSPs; `None` = answer at once.
    hold: Mutex<Option<Duration>>,
    held: Mutex<Vec<Held>>,
    handshake_failures: Mutex<Vec<HandshakeFailed>>,
}

/// A running listener; stopped on drop.
pub struct Listener {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// A plain TCP listener.
    pub fn start(addr: SocketAddr) -> std::io::Result<Listener> {
        Self::start_tls(addr, None)
    }

    /// A listener speaking TLS with `tls` (built by [`dicomtap_proxy::tls::build_server_config`]),
    /// or plain TCP with `None`.
    pub fn start_tls(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Listener> {
        let sock = TcpListener::bind(addr)?;
        sock.set_nonblocking(true)?;
        let addr = sock.local_addr()?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match sock.accept() {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nonblocking(false);
                        let sh = sh.clone();
                        let st = st.clone();
                        let tls = tls.clone();
                        std::thread::spawn(move || {
                            if let Some(link) = open(stream, peer, tls, &sh) {
                                serve(link, &sh, &st)
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Listener {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The connections whose TLS handshake failed so far.
    pub fn handshake_failures(&self) -> Vec<HandshakeFailed> {
        self.shared
            .handshake_failures
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// For the results: how the C-STORE-RQs of `instances` (SOP Instance UIDs) arrived
    /// (TLS version and cipher suite, or plain TCP), and every failed TLS handshake.
    pub fn transport_report(&self, instances: &[String]) -> Vec<String> {
        let mut by: Vec<(Option<TlsInfo>, usize)> = Vec::new();
        for r in self.received() {
            let ours = r
                .message
                .command
                .affected_sop_instance
                .as_ref()
                .is_some_and(|u| instances.contains(u));
            if !ours {
                continue;
            }
            match by.iter_mut().find(|(t, _)| *t == r.tls) {
                Some((_, n)) => *n += 1,
                None => by.push((r.tls.clone(), 1)),
            }
        }
        let mut out: Vec<String> = by
            .into_iter()
            .map(|(tls, n)| match tls {
                Some(t) => format!(
                    "listener received {n} instance(s) over TLS ({} {})",
                    t.version, t.cipher_suite
                ),
                None => format!("listener received {n} instance(s) over plain TCP"),
            })
            .collect();
        let failures = self.handshake_failures();
        if let Some(last) = failures.last() {
            out.push(format!(
                "listener: {} connection(s) refused at the TLS handshake; last from {}: {}",
                failures.len(),
                last.peer,
                last.reason
            ));
        }
        out
    }

    /// From now on, C-STORE-RSPs are held back up to `max` (`None`: answered at once).
    pub fn hold_store_responses(&self, max: Option<Duration>) {
        if let Ok(mut g) = self.shared.hold.lock() {
            *g = max;
        }
    }

    /// The held C-STORE-RSPs so far.
    pub fn held(&self) -> Vec<Held> {
        self.shared
            .held
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// Waits until `pred` holds for what was received, or `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut g) = self.shared.received.lock() else {
            return false;
        };
        loop {
            if pred(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.shared.cond.wait_timeout(g, deadline - now) {
                Ok((ng, _)) => g = ng,
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The link of an accepted connection after its TLS handshake (or, on a plain-TCP
/// listener, after checking that it does not open with one); `None` when it failed, which
/// is logged and kept.
fn open(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: &Shared,
) -> Option<Link> {
    let failed = |reason: String| {
        tracing::warn!(%peer, reason = %dicomtap_analyzer::text::escape_controls(&reason), "probe listener: TLS handshake failed");
        if let Ok(mut g) = shared.handshake_failures.lock() {
            g.push(HandshakeFailed { peer, reason });
        }
        shared.cond.notify_all();
        None
    };
    match tls {
        None => match tls_on_plain(&stream) {
            Some(reason) => failed(reason),
            None => Some(Link::accepted_from(stream, peer)),
        },
        Some(config) => match Link::accepted_tls(stream, peer, config, HANDSHAKE_TIMEOUT) {
            Ok(link) => Some(link),
            Err(super::link::LinkError::Tls { reason, .. }) => failed(reason),
            Err(other) => failed(other.to_string()),
        },
    }
}

/// On a plain-TCP listener: `Some(reason)` when the peer opens with a TLS record (a
/// ClientHello) instead of an A-ASSOCIATE-RQ.
fn tls_on_plain(stream: &std::net::TcpStream) -> Option<String> {
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let mut first = [0u8; 1];
    let peeked = stream.peek(&mut first);
    let _ = stream.set_read_timeout(None);
    // 0x16: TLS handshake record; no DICOM PDU has this type.
    (matches!(peeked, Ok(1)) && first[0] == 0x16).then(|| {
        "the peer started a TLS handshake, but this listener speaks plain TCP \
         (give --listen-tls-cert and --listen-tls-key)"
            .to_string()
    })
}

fn choose(_abstract: &str, proposed: &[String]) -> Option<String> {
    proposed
        .iter()
        .find(|t| t.as_str() == EXPLICIT_LE || t.as_str() == IMPLICIT_LE)
        .or(proposed.first())
        .cloned()
}

/// Withholds the answer to a C-STORE-RQ for up to `max`, watching what the device does.
/// When it gives up, the association is answered (A-RELEASE-RP) or left as it ended.
fn hold_response(link: &mut Link, max: Duration) -> (Duration, Option<String>) {
    let t = Instant::now();
    loop {
        match link.next(t + max, "the device giving up") {
            Ok(Incoming::ReleaseRq) => {
                let _ = link.send_raw(&RELEASE_RP);
                link.shutdown_write();
                return (t.elapsed(), Some("A-RELEASE-RQ".into()));
            }
            Ok(i @ (Incoming::Abort(_) | Incoming::Closed(_))) => {
                return (t.elapsed(), Some(i.describe()));
            }
            Ok(_) => {}
            Err(super::link::LinkError::Timeout(..)) => return (t.elapsed(), None),
            Err(e) => return (t.elapsed(), Some(e.to_string())),
        }
    }
}

fn serve(mut link: Link, shared: &Shared, stop: &AtomicBool) {
    let timeout = Duration::from_secs(60);
    let mut calling = String::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            link.abort();
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(500).min(timeout);
        match link.next(deadline, "a request") {
            Ok(Incoming::Request(rq)) => {
                calling = rq.calling_ae.trim().to_string();
                let Ok(ac) = encode_accept(&rq, 65_536, choose) else {
                    // The roles asked for do not fit one answer.
                    link.abort();
                    return;
                };
                if link.send_raw(&ac).is_err() {
                    return;
                }
                // Our own AC fed into the engine fills `accepted` only on the peer's AC,
                // so keep the choice from the request here.
                for pc in &rq.contexts {
                    if let Some(ts) = choose(&pc.abstract_syntax, &pc.transfer_syntaxes) {
                        link.accepted
                            .insert(pc.id, (pc.abstract_syntax.clone(), ts));
                    }
                }
            }
            Ok(Incoming::Message(m)) if m.command.is_request() => {
                let hold = shared.hold.lock().ok().and_then(|g| *g);
                if let (Some(max), 0x0001) = (hold, m.command.command_field) {
                    let (waited, gave_up) = hold_response(&mut link, max);
                    if let Ok(mut g) = shared.held.lock() {
                        g.push(Held {
                            calling_ae: calling.clone(),
                            waited,
                            gave_up: gave_up.clone(),
                        });
                    }
                    shared.cond.notify_all();
                    if gave_up.is_some() {
                        return;
                    }
                }
                if link.answer_request(&m).is_err() {
                    return;
                }
                let ts = link
                    .accepted
                    .get(&m.pc_id)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default();
                if let Ok(mut g) = shared.received.lock() {
                    g.push(Received {
                        calling_ae: calling.clone(),
                        transfer_syntax: ts,
                        message: *m,
                        tls: link.tls.clone(),
                    });
                }
                shared.cond.notify_all();
            }
            Ok(Incoming::ReleaseRq) => {
                let _ = link.send_raw(&RELEASE_RP);
                link.shutdown_write();
                return;
            }
            Ok(Incoming::Abort(_)) | Ok(Incoming::Closed(_)) => return,
            Ok(_) => {}
            Err(super::link::LinkError::Timeout(..)) => {}
            Err(_) => return,
        }
    }
}
