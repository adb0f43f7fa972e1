//! A small blocking DICOM Upper Layer endpoint for the probe and the replay: std
//! `TcpStream`, PDUs built here byte by byte (so the probe can also send broken ones), and
//! everything the peer sends decoded by the very same sans-IO engine the analyzer uses
//! (`dicomtap_wire::Conversation`). Our own bytes are fed to the engine as well, so it
//! knows the negotiated contexts and pairs requests with responses.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use dicomtap_wire::assoc::{
    Abort, AssociateAccept, AssociateReject, AssociateRequest, ProposedContext, RoleSelection,
};
use dicomtap_wire::dimse::{Command, encode_command};
use dicomtap_wire::encode::{self, EncodeError, Pdv};
use dicomtap_wire::event::{Event, EventKind, Side};
use dicomtap_wire::{Conversation, EngineConfig, StreamEnd};

/// Implementation class UID dicomtap's probe announces.
pub const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1471.1";
/// Implementation version name dicomtap's probe announces.
pub const IMPLEMENTATION_VERSION_NAME: &str = "DICOMTAP_PROBE";
/// Largest data set kept in memory from a peer.
const MAX_DATASET: usize = 256 << 20;

/// Errors of a link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O with {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("association rejected: {0}")]
    Rejected(String),
    #[error("association aborted by the peer: {0}")]
    Aborted(String),
    #[error("the peer closed the connection while waiting for {0}")]
    Closed(String),
    #[error("unexpected answer while waiting for {wanted}: {got}")]
    Unexpected { wanted: String, got: String },
    #[error("a data set from the peer exceeds {MAX_DATASET} bytes")]
    TooLarge,
    #[error("no accepted presentation context for {0}")]
    NoContext(String),
    #[error("TLS handshake with {addr}: {reason}")]
    Tls { addr: SocketAddr, reason: String },
    #[error("encoding a PDU: {0}")]
    Encode(#[from] EncodeError),
}

/// How to reach a TLS target: the rustls client configuration (built by
/// [`dicomtap_proxy::tls::build_client_config`]) and the name its certificate is verified against.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl TlsClient {
    /// `name` is what the target's certificate is verified against (a DNS name or an IP
    /// address).
    pub fn new(config: Arc<rustls::ClientConfig>, name: &str) -> Result<TlsClient, String> {
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name:?} is not a DNS name or IP address"))?;
        Ok(TlsClient {
            config,
            server_name,
        })
    }
}

/// What a TLS handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// IANA name (rustls spelling for TLS 1.3: `TLS13_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
}

impl TlsInfo {
    fn of(conn: &rustls::CommonState) -> TlsInfo {
        let (version, cipher_suite) = dicomtap_proxy::tls::negotiated(conn);
        TlsInfo {
            version,
            cipher_suite,
        }
    }
}

/// Drives the TLS handshake of `conn` over the blocking `tcp` to its end within `timeout`.
/// On a failure the alert rustls queued is sent, as far as the peer still listens.
fn handshake(
    conn: &mut rustls::Connection,
    tcp: &mut TcpStream,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no handshake within {timeout:?}"));
        }
        let _ = tcp.set_read_timeout(Some(left));
        match conn.complete_io(tcp) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err("the peer closed the connection".into());
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = conn.write_tls(tcp);
                return Err(
                    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(r) => dicomtap_proxy::tls::rustls_error_text(r),
                        None => e.to_string(),
                    },
                );
            }
        }
    }
    Ok(())
}

/// The transport under a link: plain TCP, or TLS over TCP as client (we connected) or
/// as server (the probe's listener accepted).
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    TlsServer(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
            Stream::TlsServer(s) => &s.sock,
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        let _ = self.tcp().set_read_timeout(t);
    }

    /// Half-closes our direction (after a TLS close_notify).
    fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(_) => {}
            Stream::Tls(s) => {
                s.conn.send_close_notify();
                while s.conn.wants_write() {
                    if s.conn.write_tls(&mut s.sock).is_err() {
                        break;
                    }
                }
            }
            Stream::TlsServer(s) => {
                s.conn.send_close_notify();
                while s.conn.wants_write() {
                    if s.conn.write_tls(&mut s.sock).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // A TCP close without close_notify is still the end of the stream for DICOM.
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Stream::TlsServer(s) => match s.read(buf) {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::TlsServer(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::TlsServer(s) => s.flush(),
        }
    }
}

/// A complete DIMSE message from the peer.
#[derive(Debug, Clone)]
pub struct Message {
    pub pc_id: u8,
    pub command: Command,
    pub dataset: Option<Vec<u8>>,
    /// When the command arrived.
    pub at: Instant,
}

/// What the peer did.
#[derive(Debug, Clone)]
pub enum Incoming {
    Request(Box<AssociateRequest>),
    Accept(Box<AssociateAccept>),
    Reject(AssociateReject),
    Abort(Abort),
    ReleaseRq,
    ReleaseRp,
    Message(Box<Message>),
    /// The connection ended (FIN or reset).
    Closed(StreamEnd),
}

impl Incoming {
    pub fn describe(&self) -> String {
        match self {
            Incoming::Request(_) => "A-ASSOCIATE-RQ".into(),
            Incoming::Accept(_) => "A-ASSOCIATE-AC".into(),
            Incoming::Reject(r) => format!("A-ASSOCIATE-RJ ({})", r.description),
            Incoming::Abort(a) => format!("A-ABORT ({})", a.description),
            Incoming::ReleaseRq => "A-RELEASE-RQ".into(),
            Incoming::ReleaseRp => "A-RELEASE-RP".into(),
            Incoming::Message(m) => m.command.command.to_string(),
            Incoming::Closed(StreamEnd::Close) => "connection closed".into(),
            Incoming::Closed(StreamEnd::Reset) => "connection reset".into(),
        }
    }
}

/// A presentation context to propose: its ID is assigned by [`AssociateRqBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub abstract_syntax: String,
    pub transfer_syntaxes: Vec<String>,
}

impl Proposal {
    pub fn new(abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Self {
        Proposal {
            abstract_syntax: abstract_syntax.to_string(),
            transfer_syntaxes: transfer_syntaxes.iter().map(|s| (*s).to_string()).collect(),
        }
    }
}

/// Builds A-ASSOCIATE-RQ bytes.
#[derive(Debug, Clone)]
pub struct AssociateRqBuilder {
    pub calling_ae: String,
    pub called_ae: String,
    pub contexts: Vec<Proposal>,
    pub max_length: u32,
    /// SOP classes for which the SCP role is asked (item 0x54 with SCU and SCP set).
    pub scp_roles: Vec<String>,
    /// SOP Class Extended Negotiation sub-items (0x56): SOP class, application information.
    pub extended_negotiation: Vec<(String, Vec<u8>)>,
}

/// The user information the probe sends: its maximum length, implementation class and
/// version, `roles` and `extended` negotiation.
fn user_info(
    max_length: u32,
    roles: Vec<RoleSelection>,
    extended: &[(String, Vec<u8>)],
) -> encode::UserInfo {
    encode::UserInfo {
        max_length: Some(max_length),
        implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID.to_string()),
        implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME.to_string()),
        role_selections: roles,
        extended_negotiation: extended
            .iter()
            .map(|(sop_class, info)| encode::ExtendedNegotiationItem {
                sop_class: sop_class.clone(),
                info: info.clone(),
            })
            .collect(),
        ..encode::UserInfo::default()
    }
}

impl AssociateRqBuilder {
    pub fn new(calling_ae: &str, called_ae: &str) -> Self {
        AssociateRqBuilder {
            calling_ae: calling_ae.to_string(),
            called_ae: called_ae.to_string(),
            contexts: Vec::new(),
            max_length: 65_536,
            scp_roles: Vec::new(),
            extended_negotiation: Vec::new(),
        }
    }

    pub fn context(mut self, p: Proposal) -> Self {
        self.contexts.push(p);
        self
    }

    /// The context ID of the `i`-th proposal (odd numbers from 1; more than 128 wrap).
    pub fn id_of(i: usize) -> u8 {
        ((i * 2 + 1) % 256) as u8
    }

    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut rq = encode::AssociateRq::new(&self.calling_ae, &self.called_ae);
        rq.contexts = self
            .contexts
            .iter()
            .enumerate()
            .map(|(i, pc)| ProposedContext {
                id: Self::id_of(i),
                abstract_syntax: pc.abstract_syntax.clone(),
                transfer_syntaxes: pc.transfer_syntaxes.clone(),
            })
            .collect();
        let roles = self
            .scp_roles
            .iter()
            .map(|s| RoleSelection {
                sop_class: s.clone(),
                scu: true,
                scp: true,
            })
            .collect();
        rq.user_info = user_info(self.max_length, roles, &self.extended_negotiation);
        rq.to_vec()
    }
}

/// Builds the A-ASSOCIATE-AC answering `rq`: each context accepted with the first of its
/// transfer syntaxes that `choose` accepts, else rejected (4); SCP/SCU roles granted as
/// proposed.
pub fn encode_accept(
    rq: &AssociateRequest,
    max_length: u32,
    choose: impl Fn(&str, &[String]) -> Option<String>,
) -> Result<Vec<u8>, EncodeError> {
    let mut ac = encode::AssociateAc::answering(rq);
    ac.results = rq
        .contexts
        .iter()
        .map(|pc| {
            let chosen = choose(&pc.abstract_syntax, &pc.transfer_syntaxes);
            let result = if chosen.is_some() { 0 } else { 4 };
            // A rejection names the first proposed syntax, or an empty one.
            let ts = chosen
                .or_else(|| pc.transfer_syntaxes.first().cloned())
                .unwrap_or_default();
            encode::ContextAnswer {
                id: pc.id,
                result,
                transfer_syntax: Some(ts),
            }
        })
        .collect();
    ac.user_info = user_info(max_length, rq.user_info.role_selections.clone(), &[]);
    ac.to_vec()
}

pub use dicomtap_proxy::recorder::now_us;

#[derive(Default)]
struct Pending {
    command: Option<Command>,
    at: Option<Instant>,
    data: Vec<u8>,
}

/// One TCP connection carrying one association.
pub struct Link {
    stream: Stream,
    pub peer: SocketAddr,
    /// Our side of the association.
    me: Side,
    conv: Conversation,
    ready: VecDeque<Incoming>,
    pending: HashMap<u8, Pending>,
    next_message_id: u16,
    /// Max length the peer advertised (0 = unlimited), once known.
    pub peer_max_length: Option<u32>,
    /// Largest P-DATA-TF PDU length the peer sent.
    pub peer_largest_pdu: u32,
    /// Accepted contexts: id -> (abstract syntax, transfer syntax).
    pub accepted: HashMap<u8, (String, String)>,
    pub closed: bool,
    /// Engine events of the peer, for callers that want them (e.g. replay diff).
    pub events: Vec<Event>,
    pub keep_events: bool,
    /// What the TLS handshake negotiated (TLS links only).
    pub tls: Option<TlsInfo>,
    rbuf: Vec<u8>,
}

impl Link {
    /// Connects to `addr` (as association requestor).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Link, LinkError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|source| LinkError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        Ok(Self::wrap(Stream::Plain(stream), addr, Side::Requestor))
    }

    /// Connects to `addr`, over TLS when `tls` is given (the handshake completes within
    /// `timeout` before this returns).
    pub fn connect_with(
        addr: SocketAddr,
        timeout: Duration,
        tls: Option<&TlsClient>,
    ) -> Result<Link, LinkError> {
        let Some(tls) = tls else {
            return Self::connect(addr, timeout);
        };
        let mut tcp = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|source| LinkError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let fail = |reason: String| LinkError::Tls { addr, reason };
        let conn = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
            .map_err(|e| fail(e.to_string()))?;
        let mut conn = rustls::Connection::Client(conn);
        handshake(&mut conn, &mut tcp, timeout).map_err(fail)?;
        let rustls::Connection::Client(conn) = conn else {
            return Err(fail("not a client connection".into()));
        };
        let info = TlsInfo::of(&conn);
        let mut link = Self::wrap(
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))),
            addr,
            Side::Requestor,
        );
        link.tls = Some(info);
        Ok(link)
    }

    /// Wraps an accepted connection (we are the association acceptor).
    pub fn accepted_from(stream: TcpStream, peer: SocketAddr) -> Link {
        let _ = stream.set_nodelay(true);
        Self::wrap(Stream::Plain(stream), peer, Side::Acceptor)
    }

    /// Wraps an accepted connection after a TLS handshake as server with `config`
    /// (completed within `timeout`, else an error: the connection is then dropped).
    pub fn accepted_tls(
        mut tcp: TcpStream,
        peer: SocketAddr,
        config: Arc<rustls::ServerConfig>,
        timeout: Duration,
    ) -> Result<Link, LinkError> {
        let _ = tcp.set_nodelay(true);
        let fail = |reason: String| LinkError::Tls { addr: peer, reason };
        let conn = rustls::ServerConnection::new(config).map_err(|e| fail(e.to_string()))?;
        let mut conn = rustls::Connection::Server(conn);
        handshake(&mut conn, &mut tcp, timeout).map_err(fail)?;
        let rustls::Connection::Server(conn) = conn else {
            return Err(fail("not a server connection".into()));
        };
        let _ = tcp.set_read_timeout(None);
        let info = TlsInfo::of(&conn);
        let mut link = Self::wrap(
            Stream::TlsServer(Box::new(rustls::StreamOwned::new(conn, tcp))),
            peer,
            Side::Acceptor,
        );
        link.tls = Some(info);
        Ok(link)
    }

    fn wrap(stream: Stream, peer: SocketAddr, me: Side) -> Link {
        let config = EngineConfig {
            emit_data: true,
            emit_pdata: true,
            ..EngineConfig::default()
        };
        Link {
            stream,
            peer,
            me,
            conv: Conversation::new(config),
            ready: VecDeque::new(),
            pending: HashMap::new(),
            next_message_id: 1,
            peer_max_length: None,
            peer_largest_pdu: 0,
            accepted: HashMap::new(),
            closed: false,
            events: Vec::new(),
            keep_events: false,
            tls: None,
            rbuf: vec![0u8; 64 * 1024],
        }
    }

    fn io(&self, source: std::io::Error) -> LinkError {
        LinkError::Io {
            addr: self.peer,
            source,
        }
    }

    /// Sends raw bytes (any PDU, well-formed or not).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| self.io(e))?;
        self.conv.feed(self.me, now_us(), bytes);
        self.drain();
        Ok(())
    }

    /// Half-closes our direction.
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown_write();
    }

    pub fn next_message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    /// The maximum length our P-DATA-TF PDUs keep to: the peer's, within 70 bytes and
    /// 1 MiB (no limit, or none given, is 1 MiB).
    fn max_length(&self) -> u32 {
        match self.peer_max_length {
            Some(0) | None => 1 << 20,
            Some(m) => m.clamp(70, 1 << 20),
        }
    }

    /// Sends a command set and, when given, its data set, fragmented to the peer's max.
    pub fn send_message(
        &mut self,
        pc_id: u8,
        command: &Command,
        dataset: Option<&[u8]>,
    ) -> Result<(), LinkError> {
        let mut cmd = command.clone();
        cmd.has_dataset = dataset.is_some();
        let bytes = encode_command(&cmd);
        self.send_fragments(pc_id, true, &bytes)?;
        if let Some(ds) = dataset {
            self.send_fragments(pc_id, false, ds)?;
        }
        Ok(())
    }

    /// Sends data fragmented to the peer's maximum length, one PDV per P-DATA-TF.
    pub fn send_fragments(
        &mut self,
        pc_id: u8,
        command: bool,
        data: &[u8],
    ) -> Result<(), LinkError> {
        let mut pdu = Vec::new();
        for pdv in encode::fragments(pc_id, command, data, self.max_length()) {
            pdu.clear();
            encode::p_data(&mut pdu, &[pdv])?;
            self.send_raw(&pdu)?;
        }
        Ok(())
    }

    /// Sends one P-DATA-TF with one PDV, whatever its size.
    pub fn send_pdv(
        &mut self,
        pc_id: u8,
        command: bool,
        last: bool,
        data: &[u8],
    ) -> Result<(), LinkError> {
        let mut pdu = Vec::new();
        encode::p_data(
            &mut pdu,
            &[Pdv {
                pc_id,
                command,
                last,
                data,
            }],
        )?;
        self.send_raw(&pdu)
    }

    fn drain(&mut self) {
        let peer = self.me.peer();
        while let Some(ev) = self.conv.poll() {
            if ev.from != peer {
                continue;
            }
            let keep = self.keep_events && !matches!(ev.kind, EventKind::DataFragment(_));
            match &ev.kind {
                EventKind::AssociateRq(rq) => {
                    self.ready
                        .push_back(Incoming::Request(Box::new(rq.clone())));
                }
                EventKind::AssociateAc(ac) => {
                    self.peer_max_length = ac.user_info.max_length;
                    self.accepted = self
                        .conv
                        .accepted_contexts()
                        .map(|c| {
                            (
                                c.id,
                                (
                                    c.abstract_syntax.clone().unwrap_or_default(),
                                    c.transfer_syntax.clone(),
                                ),
                            )
                        })
                        .collect();
                    self.ready.push_back(Incoming::Accept(Box::new(ac.clone())));
                }
                EventKind::AssociateRj(rj) => self.ready.push_back(Incoming::Reject(rj.clone())),
                EventKind::Abort(a) => self.ready.push_back(Incoming::Abort(a.clone())),
                EventKind::ReleaseRq => self.ready.push_back(Incoming::ReleaseRq),
                EventKind::ReleaseRp => self.ready.push_back(Incoming::ReleaseRp),
                EventKind::PData(p) => {
                    self.peer_largest_pdu = self.peer_largest_pdu.max(p.pdu_length);
                }
                EventKind::Command(c) => {
                    let p = self.pending.entry(c.pc_id).or_default();
                    if c.command.has_dataset {
                        p.command = Some(c.command.clone());
                        p.at = Some(Instant::now());
                        p.data.clear();
                    } else {
                        self.ready.push_back(Incoming::Message(Box::new(Message {
                            pc_id: c.pc_id,
                            command: c.command.clone(),
                            dataset: None,
                            at: Instant::now(),
                        })));
                    }
                }
                EventKind::DataFragment(f) => {
                    let p = self.pending.entry(f.pc_id).or_default();
                    if p.data.len() + f.bytes.len() <= MAX_DATASET {
                        p.data.extend_from_slice(&f.bytes);
                    }
                    if f.last
                        && let Some(command) = p.command.take()
                    {
                        let data = std::mem::take(&mut p.data);
                        self.ready.push_back(Incoming::Message(Box::new(Message {
                            pc_id: f.pc_id,
                            command,
                            dataset: Some(data),
                            at: p.at.unwrap_or_else(Instant::now),
                        })));
                    }
                }
                EventKind::StreamEnd { how } => {
                    self.ready.push_back(Incoming::Closed(*how));
                }
                _ => {}
            }
            if keep {
                self.events.push(ev);
            }
        }
    }

    /// The next thing the peer did, waiting at most until `deadline`.
    pub fn next(&mut self, deadline: Instant, what: &str) -> Result<Incoming, LinkError> {
        loop {
            if let Some(i) = self.ready.pop_front() {
                if matches!(i, Incoming::Closed(_)) {
                    self.closed = true;
                }
                return Ok(i);
            }
            if self.closed {
                return Err(LinkError::Closed(what.to_string()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LinkError::Timeout(Duration::ZERO, what.to_string()));
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(wait));
            match self.stream.read(&mut self.rbuf) {
                Ok(0) => self.conv.end(self.me.peer(), now_us(), StreamEnd::Close),
                Ok(n) => {
                    let data = self.rbuf.get(..n).unwrap_or_default();
                    self.conv.feed(self.me.peer(), now_us(), data);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.conv.end(self.me.peer(), now_us(), StreamEnd::Reset),
            }
            self.drain();
        }
    }

    /// Proposes an association and waits for the answer.
    pub fn associate(
        &mut self,
        rq: &AssociateRqBuilder,
        timeout: Duration,
    ) -> Result<AssociateAccept, LinkError> {
        self.send_raw(&rq.encode()?)?;
        let deadline = Instant::now() + timeout;
        match self.next(deadline, "A-ASSOCIATE-AC")? {
            Incoming::Accept(ac) => Ok(*ac),
            Incoming::Reject(rj) => Err(LinkError::Rejected(rj.description)),
            Incoming::Abort(a) => Err(LinkError::Aborted(a.description)),
            Incoming::Closed(_) => Err(LinkError::Closed("A-ASSOCIATE-AC".into())),
            other => Err(LinkError::Unexpected {
                wanted: "A-ASSOCIATE-AC".into(),
                got: other.describe(),
            }),
        }
    }

    /// The accepted context for an abstract syntax (any transfer syntax, or one of `ts`).
    pub fn context_for(&self, abstract_syntax: &str, ts: Option<&str>) -> Option<(u8, String)> {
        let mut ids: Vec<_> = self
            .accepted
            .iter()
            .filter(|(_, (a, t))| a == abstract_syntax && ts.is_none_or(|x| x == t))
            .map(|(id, (_, t))| (*id, t.clone()))
            .collect();
        ids.sort();
        ids.into_iter().next()
    }

    /// Sends a request and collects its responses until a final one, answering C-STORE
    /// sub-operations (C-GET) and N-EVENT-REPORTs that arrive meanwhile with Success.
    /// Returns the responses (pending ones first) and the requests the peer made.
    pub fn request(
        &mut self,
        pc_id: u8,
        command: &Command,
        dataset: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Exchange, LinkError> {
        let started = Instant::now();
        self.send_message(pc_id, command, dataset)?;
        let sent = Instant::now();
        let mut ex = Exchange::default();
        let mut deadline = Instant::now() + timeout;
        loop {
            let what = format!("the response to {}", command.command);
            match self.next(deadline, &what)? {
                Incoming::Message(m) if m.command.is_response() => {
                    let fin = m.command.status_class().is_none_or(|c| c.is_final());
                    if ex.first_response_us.is_none() {
                        ex.first_response_us = Some(m.at.duration_since(sent).as_micros() as u64);
                    }
                    ex.responses.push(*m);
                    if fin {
                        ex.latency_us = started.elapsed().as_micros() as u64;
                        return Ok(ex);
                    }
                    deadline = Instant::now() + timeout;
                }
                Incoming::Message(m) => {
                    self.answer_request(&m)?;
                    ex.peer_requests.push(*m);
                    deadline = Instant::now() + timeout;
                }
                Incoming::Abort(a) => return Err(LinkError::Aborted(a.description)),
                Incoming::Closed(_) => return Err(LinkError::Closed(what)),
                other => {
                    return Err(LinkError::Unexpected {
                        wanted: what,
                        got: other.describe(),
                    });
                }
            }
        }
    }

    /// Answers a request from the peer with Success (C-STORE, N-EVENT-REPORT, C-ECHO) or
    /// "unrecognized operation" (anything else).
    pub fn answer_request(&mut self, m: &Message) -> Result<(), LinkError> {
        let mut rsp = Command::new(m.command.command_field | 0x8000);
        rsp.responded_to = m.command.message_id;
        rsp.affected_sop_class = m.command.sop_class().map(str::to_string);
        rsp.affected_sop_instance = m.command.sop_instance().map(str::to_string);
        rsp.event_type_id = m.command.event_type_id;
        let code = match m.command.command_field {
            0x0001 | 0x0030 | 0x0100 => 0x0000,
            _ => 0x0211,
        };
        rsp.status = Some(dicomtap_wire::status::classify(code, rsp.command_field));
        self.send_message(m.pc_id, &rsp, None)
    }

    /// Releases the association (bounded wait for the A-RELEASE-RP), then closes.
    pub fn release(&mut self, timeout: Duration) -> Result<(), LinkError> {
        self.send_raw(&encode::RELEASE_RQ)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline, "A-RELEASE-RP") {
                Ok(Incoming::ReleaseRp) | Ok(Incoming::Closed(_)) => break,
                Ok(Incoming::Message(m)) if m.command.is_request() => {
                    let _ = self.answer_request(&m);
                }
                Ok(_) => {}
                Err(e) => {
                    self.shutdown_write();
                    return Err(e);
                }
            }
        }
        self.shutdown_write();
        Ok(())
    }

    /// Sends an A-ABORT (service user, no reason) and closes.
    pub fn abort(&mut self) {
        let _ = self.send_raw(&encode::abort(0, 0));
        self.shutdown_write();
    }
}

/// The outcome of one request.
#[derive(Debug, Default, Clone)]
pub struct Exchange {
    pub responses: Vec<Message>,
    pub peer_requests: Vec<Message>,
    /// From the start of sending to the final response.
    pub latency_us: u64,
    pub first_response_us: Option<u64>,
}

impl Exchange {
    pub fn last(&self) -> Option<&Message> {
        self.responses.last()
    }

    /// Status of the final response.
    pub fn status(&self) -> Option<u16> {
        self.last()
            .and_then(|m| m.command.status.as_ref())
            .map(|s| s.value)
    }

    /// Data sets of pending responses (C-FIND matches).
    pub fn pending_datasets(&self) -> impl Iterator<Item = &[u8]> {
        self.responses
            .iter()
            .filter(|m| m.command.status_class().is_some_and(|c| !c.is_final()))
            .filter_map(|m| m.dataset.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associate_rq_decodes_with_the_engine() {
        let rq = AssociateRqBuilder::new("PROBE", "TARGET")
            .context(Proposal::new("1.2.840.10008.1.1", &["1.2.840.10008.1.2"]))
            .context(Proposal::new(
                "1.2.840.10008.5.1.4.1.1.7",
                &["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"],
            ));
        let mut conv = Conversation::new(EngineConfig::default());
        conv.feed(Side::Requestor, 0, &rq.encode().unwrap());
        let mut found = false;
        while let Some(e) = conv.poll() {
            if let EventKind::AssociateRq(r) = e.kind {
                assert_eq!(r.calling_ae, "PROBE");
                assert_eq!(r.called_ae, "TARGET");
                assert_eq!(r.contexts.len(), 2);
                assert_eq!(r.contexts[1].id, 3);
                assert_eq!(r.user_info.max_length, Some(65_536));
                let ac = encode_accept(&r, 16_384, |_, ts| ts.first().cloned()).unwrap();
                conv.feed(Side::Acceptor, 1, &ac);
                found = true;
            }
        }
        assert!(found);
        assert_eq!(conv.accepted_contexts().count(), 2);
    }
}
