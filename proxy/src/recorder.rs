//! The recorder: pcapng with synthesized Ethernet/IP/TCP frames (consistent sequence
//! numbers, so Wireshark/tshark reassemble and decode them as DICOM) and a JSON-lines event
//! log beside it.
//!
//! Forwarding hands chunks over through a bounded queue ([`RecorderHandle`]); a dedicated
//! thread writes them. Each block is built whole in memory and buffers are written out as
//! whole blocks (every `flush_interval_ms`, or when half a megabyte is pending; how, with
//! or without direct I/O, is `recorder/file.rs`'s business), so after a `kill -9` the file
//! ends at a block boundary. Files rotate by size and age, the oldest pairs beyond
//! `keep_files` are deleted, and every file is created with mode 0600.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dicomtap_wire::{Side, StreamEnd};
use tokio::sync::mpsc;

use crate::config::{PayloadMode, RecordingConfig};
use crate::events::ProxyEvent;
use crate::metrics::Metrics;
use crate::server::framing::{Framer, Span};

mod direct;
mod file;
mod json;
use file::{BlockFile, WriteMode};

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recorder thread ended unexpectedly")]
    Thread,
}

/// Largest TCP payload per synthesized frame (IPv4 total length must stay below 65535).
pub const MAX_SEGMENT: usize = 65_000;
/// A message to the recorder thread.
#[derive(Debug)]
pub enum RecordMsg {
    /// A new association: its endpoints as the tap shows them.
    Open {
        assoc: u64,
        ts_us: u64,
        client: SocketAddr,
        /// The upstream (or, when none was reached, the listener the client called).
        upstream: SocketAddr,
        /// The proxy's listening address (client leg, `both_legs` only).
        proxy_listen: SocketAddr,
        /// The proxy's local address towards the upstream (`both_legs` only).
        proxy_local: Option<SocketAddr>,
    },
    /// Bytes sent by `from`. `skipped_before` bytes of that direction were dropped from
    /// the queue just before these: the capture shows them as a hole.
    Data {
        assoc: u64,
        ts_us: u64,
        from: Side,
        bytes: Bytes,
        skipped_before: u64,
    },
    /// `from`'s stream ended, `skipped_before` bytes after the last `Data` dropped.
    End {
        assoc: u64,
        ts_us: u64,
        from: Side,
        how: StreamEnd,
        skipped_before: u64,
    },
    /// One event log line.
    Event(Box<ProxyEvent>),
    /// Write out what is buffered.
    Flush,
    /// Flush, close the files, end the thread.
    Close,
}

/// What the recorder wrote.
#[derive(Debug, Clone, Default)]
pub struct RecorderStats {
    pub packets: u64,
    pub events: u64,
    /// Writes that failed (disk full, I/O error); what they held was dropped and counted.
    pub write_errors: u64,
    /// Capture bytes written with direct I/O, and through the page cache (all of them
    /// without direct I/O; with it, what came while the disk was behind).
    pub direct_bytes: u64,
    pub cached_bytes: u64,
    pub files: Vec<PathBuf>,
}

/// How long forwarding may wait for room in the recorder's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordWait {
    /// A full queue drops the chunk at once.
    Never,
    /// Wait at most this long per chunk, then drop it.
    Up(Duration),
    /// Backpressure: wait for as long as it takes.
    Forever,
}

impl RecordWait {
    /// What `config` asks for.
    pub fn of(config: &RecordingConfig) -> RecordWait {
        match (config.backpressure, config.record_wait_ms) {
            (true, _) => RecordWait::Forever,
            (false, 0) => RecordWait::Never,
            (false, ms) => RecordWait::Up(Duration::from_millis(ms)),
        }
    }
}

/// What is missing from the recording: chunks (and event lines) and forwarded bytes,
/// counted where they are lost (the queue, a failed write) and exported as metrics.
struct Losses {
    /// The queue has been full since this (microseconds after `epoch`, plus one; 0: it
    /// is not), with waits for room in between: forwarding waits at most `record_wait_ms`
    /// in all from then on, not per chunk, so a disk that is slow but keeps going does
    /// not pace the traffic at its own speed.
    full_since: AtomicU64,
    epoch: Instant,
    /// That time ran out: chunks are dropped without waiting until the recorder has
    /// caught up to half its queue.
    behind: AtomicBool,
    chunks: AtomicU64,
    bytes: AtomicU64,
    chunks_total: prometheus::IntCounter,
    bytes_total: prometheus::IntCounter,
}

impl Losses {
    fn new(metrics: &Metrics) -> Losses {
        Losses {
            full_since: AtomicU64::new(0),
            epoch: Instant::now(),
            behind: AtomicBool::new(false),
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            chunks_total: metrics.recorder_dropped_total.clone(),
            bytes_total: metrics.recorder_dropped_bytes_total.clone(),
        }
    }

    fn count(&self, chunks: u64, bytes: u64) {
        self.chunks.fetch_add(chunks, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.chunks_total.inc_by(chunks);
        self.bytes_total.inc_by(bytes);
    }
}

/// The sending side, cloned into every association.
#[derive(Clone)]
pub struct RecorderHandle {
    tx: mpsc::Sender<RecordMsg>,
    wait: RecordWait,
    losses: Arc<Losses>,
}

impl RecorderHandle {
    /// Queues a chunk: when the queue is full, waits for room as configured
    /// ([`RecordWait`]), then drops it and counts it (chunk and bytes). The wait is a
    /// budget for the whole time the queue stays full, not one per chunk; once it ran
    /// out, full queues drop at once until the recorder has caught up to half its queue.
    /// Returns whether it was queued.
    pub async fn send(&self, msg: RecordMsg) -> bool {
        let l = &*self.losses;
        if (l.behind.load(Ordering::Relaxed) || l.full_since.load(Ordering::Relaxed) != 0)
            && 2 * self.tx.capacity() >= self.tx.max_capacity()
        {
            // Caught up: the next full queue is waited for again.
            l.full_since.store(0, Ordering::Relaxed);
            l.behind.store(false, Ordering::Relaxed);
        }
        let msg = match self.tx.try_send(msg) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        };
        let permit = match self.wait {
            RecordWait::Up(_) if l.behind.load(Ordering::Relaxed) => None,
            RecordWait::Never => None,
            RecordWait::Forever => self.tx.reserve().await.ok(),
            RecordWait::Up(limit) => {
                let now = l.epoch.elapsed().as_micros() as u64 + 1;
                let since = match l.full_since.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => now,
                    Err(since) => since,
                };
                let left = limit.saturating_sub(Duration::from_micros(now.saturating_sub(since)));
                match tokio::time::timeout(left, self.tx.reserve()).await {
                    Ok(permit) => permit.ok(),
                    Err(_) => {
                        l.behind.store(true, Ordering::Relaxed);
                        None
                    }
                }
            }
        };
        match permit {
            Some(permit) => {
                permit.send(msg);
                true
            }
            None => {
                if !self.tx.is_closed() {
                    self.losses.count(1, msg.payload_len());
                }
                false
            }
        }
    }

    /// Queues `msg`, waiting for room (for events and connection bookkeeping, which are
    /// never on the forwarding path).
    pub async fn send_wait(&self, msg: RecordMsg) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    /// Chunks and events missing from the recording so far.
    pub fn dropped(&self) -> u64 {
        self.losses.chunks.load(Ordering::Relaxed)
    }

    /// Forwarded bytes missing from the recording so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.losses.bytes.load(Ordering::Relaxed)
    }
}

impl RecordMsg {
    /// The forwarded bytes the message carries.
    fn payload_len(&self) -> u64 {
        match self {
            RecordMsg::Data { bytes, .. } => bytes.len() as u64,
            _ => 0,
        }
    }
}

/// The running recorder: its thread, its flush ticker and the names of its current files.
pub struct Recorder {
    handle: RecorderHandle,
    files: Arc<Mutex<Vec<PathBuf>>>,
    thread: Option<std::thread::JoinHandle<Result<RecorderStats, RecorderError>>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Creates the directory and the first file pair, starts the writer thread. Must be
    /// called inside a tokio runtime.
    pub fn start(
        config: RecordingConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Recorder, RecorderError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.dir)
            .map_err(|source| RecorderError::Io {
                path: config.dir.clone(),
                source,
            })?;
        let files = Arc::new(Mutex::new(Vec::new()));
        let losses = Arc::new(Losses::new(&metrics));
        let mut writer = Writer::new(config.clone(), files.clone(), &metrics, losses.clone())?;
        let (tx, mut rx) = mpsc::channel(config.queue_chunks.max(1));
        let stall = test_stall();
        let thread = std::thread::Builder::new()
            .name("dicomtap-recorder".into())
            .spawn(move || {
                // While writes fail (disk full), messages are dropped and counted, and the
                // failure is logged once, not once per message; forwarding never notices.
                let mut failing = false;
                // On a disk that is nearly full, writes fail and succeed by turns: log at
                // most one failure every ten seconds, with how many were not logged.
                let mut last_logged: Option<Instant> = None;
                let mut unlogged = 0u64;
                let mut batching = Batching::default();
                while let Some(msg) = batching.next(&mut rx) {
                    if matches!(msg, RecordMsg::Close) {
                        break;
                    }
                    if let Some(stall) = stall
                        && matches!(msg, RecordMsg::Data { .. })
                    {
                        std::thread::sleep(stall);
                    }
                    match writer.handle(msg) {
                        Ok(()) => failing = false,
                        Err(e) => {
                            writer.failed();
                            let quiet = last_logged.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
                            if !failing && !quiet {
                                tracing::error!(
                                    "recorder: {}; recorded data is dropped (and counted in dicomtap_recorder_dropped_total and dicomtap_recorder_dropped_bytes_total) until writing works again ({unlogged} failures since the last message)",
                                    with_cause(&e)
                                );
                                last_logged = Some(Instant::now());
                                unlogged = 0;
                            } else {
                                unlogged += 1;
                            }
                            failing = true;
                        }
                    }
                }
                writer.finish()
            })
            .map_err(|source| RecorderError::Io {
                path: config.dir.clone(),
                source,
            })?;
        let tick_tx = tx.clone();
        let interval = Duration::from_millis(config.flush_interval_ms.max(10));
        let ticker = tokio::spawn(async move {
            let mut t = tokio::time::interval(interval);
            loop {
                t.tick().await;
                match tick_tx.try_send(RecordMsg::Flush) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
        Ok(Recorder {
            handle: RecorderHandle {
                tx,
                wait: RecordWait::of(&config),
                losses,
            },
            files,
            thread: Some(thread),
            ticker,
        })
    }

    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }

    /// The capture and event log being written now.
    pub fn current_files(&self) -> Vec<PathBuf> {
        self.files.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Flushes and closes the files; waits for the writer thread.
    pub async fn close(mut self) -> Result<RecorderStats, RecorderError> {
        self.ticker.abort();
        let _ = self.handle.tx.send(RecordMsg::Close).await;
        let Some(thread) = self.thread.take() else {
            return Err(RecorderError::Thread);
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(r)) => r,
            _ => Err(RecorderError::Thread),
        }
    }
}

/// Tests only (docs/testing.md): `DICOMTAP_TEST_RECORDER_STALL_MS` makes the writer
/// thread wait that long before each chunk, a disk too slow for the traffic.
fn test_stall() -> Option<Duration> {
    let ms: u64 = std::env::var("DICOMTAP_TEST_RECORDER_STALL_MS")
        .ok()?
        .parse()
        .ok()?;
    tracing::warn!("recorder: stalled {ms} ms per chunk (DICOMTAP_TEST_RECORDER_STALL_MS)");
    Some(Duration::from_millis(ms))
}

/// How the writer thread waits for messages. Waking a parked thread costs the sender a
/// system call, and on a busy proxy that would be one per forwarded chunk, on the
/// forwarding path. So while traffic flows the thread drains the queue, then sleeps a
/// millisecond without registering to be woken (senders then only push to the queue);
/// after [`Batching::IDLE_AFTER`] without messages it blocks until the next one, so an
/// idle proxy does not poll.
#[derive(Default)]
struct Batching {
    /// When the last message other than a flush came.
    last_message: Option<Instant>,
}

impl Batching {
    const NAP: Duration = Duration::from_millis(1);
    const IDLE_AFTER: Duration = Duration::from_millis(100);

    /// Traffic keeps the thread in its polling mode; the flush ticker does not (or an
    /// idle proxy would poll half the time).
    fn saw(&mut self, msg: &RecordMsg) {
        if !matches!(msg, RecordMsg::Flush) {
            self.last_message = Some(Instant::now());
        }
    }

    /// The next message; `None` once every sender is gone.
    fn next(&mut self, rx: &mut mpsc::Receiver<RecordMsg>) -> Option<RecordMsg> {
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    self.saw(&msg);
                    return Some(msg);
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            let busy = self
                .last_message
                .is_some_and(|t| t.elapsed() < Self::IDLE_AFTER);
            if !busy {
                let msg = rx.blocking_recv();
                if let Some(m) = &msg {
                    self.saw(m);
                }
                return msg;
            }
            std::thread::sleep(Self::NAP);
        }
    }
}

/// One TCP conversation as synthesized in the capture.
#[derive(Debug, Clone)]
struct Leg {
    /// [requestor side, acceptor side] addresses.
    addr: [SocketAddr; 2],
    /// Next sequence number each side sends.
    seq: [u32; 2],
}

struct Conv {
    legs: Vec<Leg>,
    framers: [Framer; 2],
    ended: [bool; 2],
    comment: String,
    /// Bytes of each direction left out on purpose (`headers` mode) since the last packet
    /// written: the next packet of that direction says so in its comment.
    omitted: [u64; 2],
    /// Bytes of each direction missing from the capture (dropped from the queue, or lost
    /// in a failed write) not yet noted in a packet written since: the next packet of
    /// that direction says `lost=N`, or a marker at the end of the recording does.
    lost: [u64; 2],
    /// The flags each direction ended with (FIN or RST), to note a loss after its end.
    end_flags: [u8; 2],
}

impl Conv {
    /// `n` bytes of direction `i` were dropped before they reached the recorder.
    fn skip(&mut self, i: usize, n: u64) {
        // Whatever was dropped is lost to the framing too: keep everything from here.
        // Bytes left out just before the loss become part of the hole.
        self.framers[i] = Framer::new(None);
        self.lost[i] += n + std::mem::take(&mut self.omitted[i]);
        for leg in self.legs.iter_mut() {
            leg.seq[i] = leg.seq[i].wrapping_add(n as u32);
        }
    }
}

/// Payload of one conversation's direction put into the capture's buffer since the last
/// write known to have reached the file: what a failed write takes with it.
#[derive(Debug, Clone, Copy)]
struct Inflight {
    assoc: u64,
    dir: usize,
    segments: u64,
    bytes: u64,
    /// `lost=N` notes among those packets: lost with them, to be noted again.
    noted: u64,
}

/// Room kept free beside the recording, given up when the disk is full so that the end
/// of the capture can still say what is missing from it.
const RESERVE_BYTES: usize = 256 * 1024;

/// How long a rotation that could not open its files waits before it is tried again.
const ROTATE_RETRY: Duration = Duration::from_secs(1);

struct Writer {
    config: RecordingConfig,
    pcap: Option<BlockFile>,
    log: BlockFile,
    opened_at: Instant,
    seq_no: u64,
    /// After a rotation that could not open its files (a full disk), the next attempt
    /// waits until then: a retry per message would be a file system call per chunk.
    rotate_after: Option<Instant>,
    /// Boxed: a conversation holds two framers of 2 KiB each, and it is taken out of the
    /// map and put back for every chunk (the packets it writes borrow the writer).
    convs: HashMap<u64, Box<Conv>>,
    files: Arc<Mutex<Vec<PathBuf>>>,
    stats: RecorderStats,
    all_files: Vec<PathBuf>,
    /// Scratch for one packet's Ethernet/IP/TCP headers.
    headers: Vec<u8>,
    /// `dicomtap_recorder_written_bytes_total` for direct and page-cache writes, and
    /// what of the current capture they already count.
    written_total: [prometheus::IntCounter; 2],
    counted: [u64; 2],
    losses: Arc<Losses>,
    /// Payload in the capture's buffer not yet known written, oldest first.
    inflight: Vec<Inflight>,
    /// What a failed write of the capture lost, accounted once the message is handled;
    /// and that write's error.
    failed_inflight: Vec<Inflight>,
    pcap_error: Option<RecorderError>,
    /// A failure whose loss was counted already (the thread counts the others).
    loss_counted: bool,
    /// Conversations that ended while some of their packets were not yet known written.
    ended: HashMap<u64, Box<Conv>>,
    /// The reserve file, while it exists.
    reserve: Option<PathBuf>,
    event_head: EventHead,
}

impl Writer {
    fn new(
        config: RecordingConfig,
        files: Arc<Mutex<Vec<PathBuf>>>,
        metrics: &Metrics,
        losses: Arc<Losses>,
    ) -> Result<Writer, RecorderError> {
        let (pcap, log) = open_pair(&config, 0)?;
        let reserve = make_reserve(&config);
        let mut w = Writer {
            config,
            pcap,
            log,
            opened_at: Instant::now(),
            seq_no: 0,
            rotate_after: None,
            convs: HashMap::new(),
            files,
            stats: RecorderStats::default(),
            all_files: Vec::new(),
            headers: Vec::with_capacity(128),
            written_total: ["direct", "page_cache"].map(|io| {
                metrics
                    .recorder_written_bytes_total
                    .with_label_values(&[io])
            }),
            counted: [0, 0],
            losses,
            inflight: Vec::new(),
            failed_inflight: Vec::new(),
            pcap_error: None,
            loss_counted: false,
            ended: HashMap::new(),
            reserve,
            event_head: EventHead::default(),
        };
        w.publish_files();
        w.enforce_retention();
        Ok(w)
    }

    fn publish_files(&mut self) {
        let mut current = Vec::new();
        if let Some(p) = &self.pcap {
            current.push(p.path.clone());
        }
        current.push(self.log.path.clone());
        for f in &current {
            if !self.all_files.contains(f) {
                self.all_files.push(f.clone());
            }
        }
        if let Ok(mut files) = self.files.lock() {
            *files = current;
        }
    }

    /// Handles one message. A failed write of the capture does not stop it halfway (the
    /// sequence numbers must go on counting what was lost); its loss is accounted and
    /// its error returned at the end.
    fn handle(&mut self, msg: RecordMsg) -> Result<(), RecorderError> {
        let result = self.handle_msg(msg);
        match self.take_pcap_failure() {
            Some(e) => Err(e),
            None => result,
        }
    }

    /// A write of the capture failed: its loss goes back to the conversations it
    /// belongs to (noted by their next packets) and into the counters.
    fn take_pcap_failure(&mut self) -> Option<RecorderError> {
        let e = self.pcap_error.take()?;
        let (mut segments, mut bytes) = (0, 0);
        for f in std::mem::take(&mut self.failed_inflight) {
            segments += f.segments;
            bytes += f.bytes;
            let conv = match self.convs.get_mut(&f.assoc) {
                Some(c) => Some(c),
                None => self.ended.get_mut(&f.assoc),
            };
            if let Some(conv) = conv {
                conv.lost[f.dir] += f.bytes + f.noted;
            }
        }
        self.losses.count(segments.max(1), bytes);
        self.loss_counted = true;
        Some(e)
    }

    /// After a failed message: counts its loss unless that was done already.
    fn failed(&mut self) {
        self.stats.write_errors += 1;
        if !std::mem::take(&mut self.loss_counted) {
            self.losses.count(1, 0);
        }
    }

    /// Payload going into the capture's buffer (`bytes`, one segment when not 0), and a
    /// `lost=N` note among it.
    fn track(&mut self, assoc: u64, dir: usize, bytes: u64, noted: u64) {
        if bytes == 0 && noted == 0 {
            return;
        }
        let segments = u64::from(bytes > 0);
        match self.inflight.last_mut() {
            Some(l) if l.assoc == assoc && l.dir == dir => {
                l.segments += segments;
                l.bytes += bytes;
                l.noted += noted;
            }
            _ => self.inflight.push(Inflight {
                assoc,
                dir,
                segments,
                bytes,
                noted,
            }),
        }
    }

    fn handle_msg(&mut self, msg: RecordMsg) -> Result<(), RecorderError> {
        self.maybe_rotate()?;
        match msg {
            RecordMsg::Open {
                assoc,
                ts_us,
                client,
                upstream,
                proxy_listen,
                proxy_local,
            } => {
                let mut legs = Vec::new();
                if self.config.both_legs {
                    legs.push(new_leg(assoc, 0, client, proxy_listen));
                    if let Some(local) = proxy_local {
                        legs.push(new_leg(assoc, 1, local, upstream));
                    }
                } else {
                    legs.push(new_leg(assoc, 0, client, upstream));
                }
                let keep = match self.config.payload {
                    PayloadMode::Headers => Some(self.config.headers_keep_bytes as u64),
                    _ => None,
                };
                let conv = Box::new(Conv {
                    legs,
                    framers: [Framer::new(keep), Framer::new(keep)],
                    ended: [false; 2],
                    comment: format!("dicomtap assoc={assoc}"),
                    omitted: [0; 2],
                    lost: [0; 2],
                    end_flags: [0; 2],
                });
                for leg in &conv.legs {
                    self.handshake(ts_us, leg, &conv.comment);
                }
                self.convs.insert(assoc, conv);
            }
            RecordMsg::Data {
                assoc,
                ts_us,
                from,
                bytes,
                skipped_before,
            } => self.data(assoc, ts_us, from, bytes, skipped_before)?,
            RecordMsg::End {
                assoc,
                ts_us,
                from,
                how,
                skipped_before,
            } => {
                let Some(mut conv) = self.convs.remove(&assoc) else {
                    return Ok(());
                };
                let i = from.index();
                if skipped_before > 0 {
                    conv.skip(i, skipped_before);
                }
                if !conv.ended[i] {
                    conv.ended[i] = true;
                    let flags = match how {
                        StreamEnd::Close => FIN | ACK,
                        StreamEnd::Reset => RST | ACK,
                    };
                    conv.end_flags[i] = flags;
                    let noted = conv.lost[i];
                    let comment =
                        note_comment(&conv.comment, &mut conv.omitted[i], &mut conv.lost[i]);
                    self.track(assoc, i, 0, noted);
                    for leg in conv.legs.iter_mut() {
                        let seq = leg.seq[i];
                        let ack = leg.seq[1 - i];
                        self.packet(
                            ts_us,
                            leg.addr[i],
                            leg.addr[1 - i],
                            seq,
                            ack,
                            flags,
                            Bytes::new(),
                            &comment,
                        );
                        leg.seq[i] = seq.wrapping_add(1);
                    }
                }
                if !(conv.ended[0] && conv.ended[1]) && how == StreamEnd::Close {
                    self.convs.insert(assoc, conv);
                } else {
                    // Kept until its packets are known written: a failed write still
                    // has a conversation to note its loss in.
                    self.ended.insert(assoc, conv);
                }
            }
            RecordMsg::Event(ev) => {
                // Straight into the block buffer: no line of its own to allocate and copy.
                let buf = self.log.buf();
                let start = buf.len();
                match self.event_head.write(buf, &ev) {
                    Ok(()) => {
                        buf.push(b'\n');
                        self.stats.events += 1;
                    }
                    Err(e) => {
                        buf.truncate(start);
                        tracing::warn!("event log: {e}");
                    }
                }
                if self.log.end_block() {
                    self.log.flush(true)?;
                }
            }
            RecordMsg::Flush => self.flush()?,
            RecordMsg::Close => {}
        }
        Ok(())
    }

    fn data(
        &mut self,
        assoc: u64,
        ts_us: u64,
        from: Side,
        bytes: Bytes,
        skipped: u64,
    ) -> Result<(), RecorderError> {
        let Some(mut conv) = self.convs.remove(&assoc) else {
            return Ok(());
        };
        let i = from.index();
        let mut spans = Vec::new();
        let mut pdus = Vec::new();
        if skipped > 0 {
            conv.skip(i, skipped);
        }
        if self.config.payload == PayloadMode::Headers {
            conv.framers[i].scan(&bytes, &mut pdus, &mut spans);
        } else {
            spans.push(Span {
                len: bytes.len(),
                keep: true,
            });
        }
        let mut off = 0usize;
        for span in spans {
            let end = (off + span.len).min(bytes.len());
            let part = bytes.slice(off.min(end)..end);
            off += span.len;
            if !span.keep {
                conv.omitted[i] = conv.omitted[i].saturating_add(span.len as u64);
            }
            // The first packet after bytes left out or lost says how many (on every leg).
            let noted = conv.lost[i];
            let first_comment =
                if span.keep && !part.is_empty() && (conv.omitted[i] > 0 || conv.lost[i] > 0) {
                    Some(note_comment(
                        &conv.comment,
                        &mut conv.omitted[i],
                        &mut conv.lost[i],
                    ))
                } else {
                    None
                };
            if first_comment.is_some() {
                self.track(assoc, i, 0, noted);
            }
            for li in 0..conv.legs.len() {
                if span.keep {
                    let mut at = 0;
                    while at < part.len() {
                        let seg = part.slice(at..(at + MAX_SEGMENT).min(part.len()));
                        let comment = match &first_comment {
                            Some(c) if at == 0 => c.as_str(),
                            _ => conv.comment.as_str(),
                        };
                        at += seg.len();
                        let leg = &conv.legs[li];
                        let (seq, ack) = (leg.seq[i], leg.seq[1 - i]);
                        let (src, dst) = (leg.addr[i], leg.addr[1 - i]);
                        let len = seg.len() as u32;
                        if li == 0 {
                            self.track(assoc, i, u64::from(len), 0);
                        }
                        self.packet(ts_us, src, dst, seq, ack, PSH | ACK, seg, comment);
                        conv.legs[li].seq[i] = seq.wrapping_add(len);
                    }
                } else {
                    conv.legs[li].seq[i] = conv.legs[li].seq[i].wrapping_add(span.len as u32);
                }
            }
        }
        self.convs.insert(assoc, conv);
        Ok(())
    }

    fn handshake(&mut self, ts_us: u64, leg: &Leg, comment: &str) {
        let (c, s) = (leg.addr[0], leg.addr[1]);
        let (cs, ss) = (leg.seq[0].wrapping_sub(1), leg.seq[1].wrapping_sub(1));
        self.packet(ts_us, c, s, cs, 0, SYN, Bytes::new(), comment);
        self.packet(
            ts_us,
            s,
            c,
            ss,
            leg.seq[0],
            SYN | ACK,
            Bytes::new(),
            comment,
        );
        self.packet(
            ts_us,
            c,
            s,
            leg.seq[0],
            leg.seq[1],
            ACK,
            Bytes::new(),
            comment,
        );
    }

    /// Appends one packet to the capture, writing the buffer out when it is full. A
    /// failed write is kept for [`Writer::handle`] to account: the message goes on.
    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        ts_us: u64,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: Bytes,
        comment: &str,
    ) {
        let Some(pcap) = self.pcap.as_mut() else {
            return;
        };
        self.headers.clear();
        write_frame_headers(&mut self.headers, src, dst, seq, ack, flags, &payload);
        write_epb(pcap, ts_us, comment, &self.headers, payload);
        self.stats.packets += 1;
        if pcap.end_block() {
            let _ = self.flush_pcap(false);
        }
    }

    /// Writes out the capture's buffer (`whole`: all of it, waiting for direct writes).
    /// What it held is known written after a buffered write or a whole one; after a
    /// failure it is lost, and the failure is kept for [`Writer::handle`].
    fn flush_pcap(&mut self, whole: bool) -> Result<(), ()> {
        let Some(pcap) = self.pcap.as_mut() else {
            return Ok(());
        };
        let known_written = !pcap.is_direct() || (whole && pcap.pending() > 0);
        match pcap.flush(whole) {
            Ok(()) => {
                if known_written {
                    self.inflight.clear();
                    self.ended.retain(|_, c| c.lost != [0, 0]);
                }
                Ok(())
            }
            Err(e) => {
                self.failed_inflight.append(&mut self.inflight);
                self.pcap_error.get_or_insert(e);
                Err(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), RecorderError> {
        if self.flush_pcap(true).is_err() {
            // `handle` returns the failure; the event log is written still.
            let _ = self.log.flush(true);
            return Ok(());
        }
        self.count_written(false);
        self.log.flush(true)
    }

    fn maybe_rotate(&mut self) -> Result<(), RecorderError> {
        let size = self.pcap.as_ref().map(|p| p.size()).unwrap_or(0) + self.log.size();
        let too_big = size >= self.config.rotate_bytes;
        let too_old = self.config.rotate_seconds > 0
            && self.opened_at.elapsed() >= Duration::from_secs(self.config.rotate_seconds);
        if !(too_big || too_old) || self.rotate_after.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        self.flush()?;
        let (pcap, log) = match open_pair(&self.config, self.seq_no + 1) {
            Ok(pair) => pair,
            Err(e) => {
                // The current files go on; open_pair left nothing behind.
                self.rotate_after = Some(Instant::now() + ROTATE_RETRY);
                return Err(e);
            }
        };
        self.rotate_after = None;
        self.seq_no += 1;
        self.count_written(true);
        self.counted = [0, 0];
        self.pcap = pcap;
        self.log = log;
        self.opened_at = Instant::now();
        // Every open conversation starts again with a handshake continuing its sequence
        // numbers, so each file stands on its own for TCP reassembly.
        let ts = now_us();
        let convs: Vec<(Vec<Leg>, String)> = self
            .convs
            .values()
            .map(|c| (c.legs.clone(), c.comment.clone()))
            .collect();
        for (legs, comment) in convs {
            for leg in &legs {
                self.handshake(ts, leg, &comment);
            }
        }
        self.publish_files();
        self.enforce_retention();
        Ok(())
    }

    /// Brings the totals of direct and page-cache writes up to date with the current
    /// capture (after a whole flush; `closing`: its end is final too).
    fn count_written(&mut self, closing: bool) {
        let Some(p) = &self.pcap else {
            return;
        };
        let (direct, cached) = p.written_by_path(closing);
        for (i, now) in [direct, cached].into_iter().enumerate() {
            let new = now.saturating_sub(self.counted[i]);
            self.written_total[i].inc_by(new);
            self.counted[i] = self.counted[i].max(now);
            if i == 0 {
                self.stats.direct_bytes += new;
            } else {
                self.stats.cached_bytes += new;
            }
        }
    }

    fn enforce_retention(&mut self) {
        if self.config.keep_files == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.config.dir) else {
            return;
        };
        let mut stems: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                n.starts_with("dicomtap-") && (n.ends_with(".pcapng") || n.ends_with(".jsonl"))
            })
            .filter_map(|n| n.rsplit_once('.').map(|(s, _)| s.to_string()))
            .collect();
        stems.sort();
        stems.dedup();
        if stems.len() <= self.config.keep_files {
            return;
        }
        let excess = stems.len() - self.config.keep_files;
        for stem in &stems[..excess] {
            for ext in ["pcapng", "jsonl"] {
                let p = self.config.dir.join(format!("{stem}.{ext}"));
                if p.exists() {
                    if let Err(e) = std::fs::remove_file(&p) {
                        tracing::warn!("retention: removing {}: {e}", p.display());
                    } else {
                        tracing::info!("retention: removed {}", p.display());
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Result<RecorderStats, RecorderError> {
        // Conversations still open are left without FIN: they did not end. What is
        // missing from the capture and was not noted yet is noted at its end; when the
        // disk is full, in the room the reserve file leaves.
        let _ = self.flush_pcap(true);
        if self.take_pcap_failure().is_some() {
            self.failed();
        }
        for attempt in 0..2 {
            if !self.note_losses() {
                break;
            }
            if self.flush_pcap(true).is_ok() {
                break;
            }
            if let Some(e) = self.take_pcap_failure() {
                self.failed();
                if attempt == 0 && self.reserve.is_some() {
                    self.release_reserve();
                } else {
                    tracing::error!(
                        "recorder: the capture cannot say what is missing from it: {}",
                        with_cause(&e)
                    );
                    break;
                }
            }
        }
        self.release_reserve();
        for file in self.pcap.iter_mut().chain(std::iter::once(&mut self.log)) {
            if let Err(e) = file.close() {
                tracing::error!(
                    "recorder: the last buffered data may be lost: {}",
                    with_cause(&e)
                );
                self.stats.write_errors += 1;
            }
        }
        self.count_written(true);
        let mut stats = self.stats.clone();
        stats.files = self.all_files.clone();
        Ok(stats)
    }
}

impl Writer {
    /// Writes a packet noting `lost=N` for every direction whose loss no packet noted
    /// yet: the conversation's next packet at its sequence number (the end again, for a
    /// direction that ended). Tells whether there was any.
    fn note_losses(&mut self) -> bool {
        let mut convs: Vec<(u64, Box<Conv>)> = self.convs.drain().collect();
        convs.extend(self.ended.drain());
        convs.sort_by_key(|(assoc, _)| *assoc);
        let mut any = false;
        let ts = now_us();
        for (assoc, conv) in convs.iter_mut() {
            for i in 0..2 {
                if conv.lost[i] == 0 {
                    continue;
                }
                any = true;
                let noted = conv.lost[i];
                let comment = note_comment(&conv.comment, &mut 0, &mut conv.lost[i]);
                self.track(*assoc, i, 0, noted);
                let flags = if conv.ended[i] {
                    conv.end_flags[i]
                } else {
                    ACK
                };
                for li in 0..conv.legs.len() {
                    let leg = &conv.legs[li];
                    let seq = leg.seq[i].wrapping_sub(u32::from(conv.ended[i]));
                    let (src, dst, ack) = (leg.addr[i], leg.addr[1 - i], leg.seq[1 - i]);
                    self.packet(ts, src, dst, seq, ack, flags, Bytes::new(), &comment);
                }
            }
        }
        self.convs.extend(convs);
        any
    }

    fn release_reserve(&mut self) {
        if let Some(path) = self.reserve.take()
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!("recorder: removing {}: {e}", path.display());
        }
    }
}

/// Writes event log lines. An event's line is `{"assoc":…,"client":…,"upstream":…`
/// followed by the fields of its kind (`#[serde(flatten)]`); that head is the same for
/// every event of an association (until its upstream is known), so it is written once
/// and copied, and the kind is written straight after it by the hand-written encoder
/// (`recorder/json.rs`): the same bytes as `serde_json::to_writer(&event)`, compared on
/// every line in debug builds, for a fraction of the work.
#[derive(Default)]
struct EventHead {
    /// The last head written and what it was written for.
    of: Option<(u64, SocketAddr, Option<SocketAddr>)>,
    head: Vec<u8>,
}

impl EventHead {
    /// Appends `ev`'s line, without its newline; on an error nothing.
    fn write(&mut self, out: &mut Vec<u8>, ev: &ProxyEvent) -> Result<(), json::JsonError> {
        let of = (ev.association, ev.client, ev.upstream);
        if self.of != Some(of) {
            self.head.clear();
            json::head(&mut self.head, ev.association, ev.client, ev.upstream);
            self.of = Some(of);
        }
        let start = out.len();
        // A command line is about 800 bytes: room for it up front, not by doubling.
        out.reserve(self.head.len() + 1024);
        out.extend_from_slice(&self.head);
        if let Err(e) = json::kind(out, &ev.kind) {
            out.truncate(start);
            return Err(e);
        }
        debug_assert_eq!(
            String::from_utf8_lossy(&out[start..]),
            serde_json::to_string(ev).unwrap_or_default(),
            "the event log line differs from serde_json's"
        );
        Ok(())
    }
}

/// The reserve file beside the recording (hidden, owner-only, [`RESERVE_BYTES`] long);
/// `None`, with a warning, when it cannot be written.
fn make_reserve(config: &RecordingConfig) -> Option<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = config
        .dir
        .join(format!(".dicomtap-reserve-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&vec![0u8; RESERVE_BYTES]));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(
                "recorder: {}: {e}; with the disk full, the capture may not say what is missing from it",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

/// An error with its causes, for log lines.
fn with_cause(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn open_pair(
    config: &RecordingConfig,
    seq: u64,
) -> Result<(Option<BlockFile>, BlockFile), RecorderError> {
    let stem = format!(
        "dicomtap-{}-{:06}-{seq:04}",
        utc_stamp(now_us() / 1_000_000),
        std::process::id() % 1_000_000
    );
    let pcap = if config.payload == PayloadMode::None {
        None
    } else {
        let mode = if config.direct_io {
            WriteMode::Direct
        } else {
            WriteMode::Buffered
        };
        let path = config.dir.join(format!("{stem}.pcapng"));
        let mut f = BlockFile::create(path.clone(), mode)?;
        write_shb_idb(f.buf(), config);
        if let Err(e) = f.flush(true) {
            // A capture without its header is no capture: not left behind (full disk).
            drop(f);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Some((f, path))
    };
    let log = match BlockFile::create(
        config.dir.join(format!("{stem}.jsonl")),
        WriteMode::Buffered,
    ) {
        Ok(log) => log,
        Err(e) => {
            if let Some((f, path)) = pcap {
                drop(f);
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
    };
    Ok((pcap.map(|(f, _)| f), log))
}

fn new_leg(assoc: u64, leg: u64, a: SocketAddr, b: SocketAddr) -> Leg {
    // Deterministic, distinct initial sequence numbers (+1: the SYN consumes one).
    let base = (assoc.wrapping_mul(0x9E37_79B9) ^ (leg << 28)) as u32;
    Leg {
        addr: [a, b],
        seq: [base.wrapping_add(1), base.wrapping_add(0x4000_0001)],
    }
}

/// Microseconds since the UNIX epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `YYYYMMDDTHHMMSSZ` of a UNIX time.
fn utc_stamp(secs: u64) -> String {
    let t = dicomtap_analyzer::text::UtcTime::from_unix(secs);
    format!("{}T{}Z", t.da(), t.tm())
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn mac_of(addr: &SocketAddr) -> [u8; 6] {
    // Locally administered, derived from the IP so each host keeps one MAC.
    let b = match addr.ip() {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

/// Appends the Ethernet + IPv4/IPv6 + TCP (20-byte) headers of a packet carrying
/// `payload` to `out`; the TCP checksum is summed over `payload` where it lies.
fn write_frame_headers(
    out: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) {
    let (sip, dip) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (IpAddr::V4(a), IpAddr::V4(b)),
        (a, b) => (IpAddr::V6(to_v6(a)), IpAddr::V6(to_v6(b))),
    };
    out.extend_from_slice(&mac_of(&dst));
    out.extend_from_slice(&mac_of(&src));
    let tcp_len = 20 + payload.len();
    let mut sum: u32 = 0;
    match (sip, dip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&0x0800u16.to_be_bytes());
            let total = (20 + tcp_len) as u16;
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = checksum(0, &ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&ip);
            sum = add_words(sum, &s.octets());
            sum = add_words(sum, &d.octets());
            sum += 6 + tcp_len as u32;
        }
        (s, d) => {
            let (s, d) = (to_v6(s), to_v6(d));
            out.extend_from_slice(&0x86DDu16.to_be_bytes());
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            ip[6] = 6;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            out.extend_from_slice(&ip);
            sum = add_words(sum, &s.octets());
            sum = add_words(sum, &d.octets());
            sum += 6 + tcp_len as u32;
        }
    }
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    // Checksum and urgent pointer stay zero while summing; the header has an even length,
    // so header and payload sum separately.
    sum = add_words(sum, &tcp);
    let c = checksum(sum, payload);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&tcp);
}

fn to_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// One's-complement sum of `data` as big-endian 16-bit words, added to `sum`. This runs
/// over every recorded byte, so it sums 32-bit words in native byte order into a 64-bit
/// accumulator (a loop the compiler vectorises) and folds once at the end: by RFC 1071
/// §2(B) the sum in the other byte order is the same sum byte-swapped.
fn add_words(sum: u32, data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    // An odd tail is padded with zeros on the right, as RFC 1071 pads the last byte.
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_ne_bytes(tail));
    let native = fold16(acc);
    let big_endian = if cfg!(target_endian = "little") {
        native.swap_bytes()
    } else {
        native
    };
    fold16(u64::from(sum) + u64::from(big_endian)).into()
}

/// End-around-carry fold of a one's-complement accumulator to 16 bits.
fn fold16(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = add_words(initial, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The comment of a conversation's packet: with `omitted=N` when `N` bytes of its
/// direction were left out on purpose just before it (`headers` mode), which the analyzer
/// reads to tell them from capture loss, and `lost=M` when `M` bytes before those are
/// missing from the capture (dropped by the recorder), which the analyzer reports as a
/// gap. Resets both counts.
fn note_comment(base: &str, omitted: &mut u64, lost: &mut u64) -> String {
    let mut out = base.to_string();
    let (omitted, lost) = (std::mem::take(omitted), std::mem::take(lost));
    if omitted > 0 {
        out.push_str(&format!(" omitted={omitted}"));
    }
    if lost > 0 {
        out.push_str(&format!(" lost={lost}"));
    }
    out
}

/// Section Header Block + one Ethernet Interface Description Block (microsecond stamps).
fn write_shb_idb(out: &mut Vec<u8>, config: &RecordingConfig) {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
    shb.extend_from_slice(&0u32.to_le_bytes()); // length, patched
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
    if config.payload == PayloadMode::Headers {
        let note = format!(
            "dicomtap recording, payload=headers: data set bytes beyond the first {} of each \
             data set are left out on purpose; a packet comment omitted=N marks N bytes left \
             out just before that packet",
            config.headers_keep_bytes
        );
        push_option(&mut shb, 1, note.as_bytes()); // opt_comment
    }
    push_option(&mut shb, 4, b"dicomtap (synthesized TCP)"); // shb_userappl
    shb.extend_from_slice(&[0, 0, 0, 0]);
    finish_block(&mut shb);
    out.extend_from_slice(&shb);

    let mut idb = Vec::new();
    idb.extend_from_slice(&1u32.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    idb.extend_from_slice(&1u16.to_le_bytes()); // LINKTYPE_ETHERNET
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes()); // snaplen: unlimited
    push_option(&mut idb, 2, b"dicomtap"); // if_name
    idb.extend_from_slice(&[0, 0, 0, 0]);
    finish_block(&mut idb);
    out.extend_from_slice(&idb);
}

fn push_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let len = value.len().min(u16::MAX as usize - 4);
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&value[..len]);
    pad4(out);
}

fn finish_block(block: &mut Vec<u8>) {
    let total = (block.len() + 4) as u32;
    block[4..8].copy_from_slice(&total.to_le_bytes());
    block.extend_from_slice(&total.to_le_bytes());
}

/// Appends an Enhanced Packet Block with an `opt_comment`: the packet is `headers` then
/// `payload`, which goes in by reference when it is long.
fn write_epb(out: &mut BlockFile, ts_us: u64, comment: &str, headers: &[u8], payload: Bytes) {
    let frame_len = headers.len() + payload.len();
    let padded = frame_len.next_multiple_of(4);
    // The options (the comment, as `push_option` writes it, and the end of options) go
    // straight into the buffer: no vector of their own per packet.
    let comment = &comment.as_bytes()[..comment.len().min(u16::MAX as usize - 4)];
    let options_len = 4 + comment.len().next_multiple_of(4) + 4;
    let total = (28 + padded + options_len + 4) as u32;
    let buf = out.buf();
    buf.extend_from_slice(&6u32.to_le_bytes());
    buf.extend_from_slice(&total.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes()); // interface 0
    buf.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
    buf.extend_from_slice(&(ts_us as u32).to_le_bytes());
    buf.extend_from_slice(&(frame_len as u32).to_le_bytes());
    buf.extend_from_slice(&(frame_len as u32).to_le_bytes());
    buf.extend_from_slice(headers);
    out.push_payload(payload);
    let buf = out.buf();
    buf.resize(buf.len() + (padded - frame_len), 0);
    buf.extend_from_slice(&1u16.to_le_bytes()); // opt_comment
    buf.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    buf.extend_from_slice(comment);
    buf.resize(
        buf.len() + (comment.len().next_multiple_of(4) - comment.len()),
        0,
    );
    buf.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    buf.extend_from_slice(&total.to_le_bytes());
}

/// Whether `path` looks like one of the recorder's files.
pub fn is_recording_file(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.starts_with("dicomtap-") && (n.ends_with(".pcapng") || n.ends_with(".jsonl"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_700_000_000), "20231114T221320Z");
    }

    #[test]
    fn wide_checksum_equals_the_word_by_word_sum() {
        // The RFC 1071 reference: 16-bit words, carry folded after each.
        fn reference(data: &[u8]) -> u16 {
            let mut sum: u32 = 0;
            for w in data.chunks(2) {
                let v = u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]);
                sum += u32::from(v);
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        }
        let mut x: u32 = 12345;
        for len in [0usize, 1, 2, 7, 8, 9, 15, 16, 17, 1000, 65_001] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            assert_eq!(checksum(0, &data), reference(&data), "length {len}");
            let ff = vec![0xFFu8; len];
            assert_eq!(checksum(0, &ff), reference(&ff), "all ones, length {len}");
        }
    }

    #[test]
    fn ipv4_and_tcp_checksums_verify() {
        let a: SocketAddr = "10.0.0.1:1234".parse().unwrap_or_else(|_| unreachable!());
        let b: SocketAddr = "10.0.0.2:104".parse().unwrap_or_else(|_| unreachable!());
        for payload in [&b"hello"[..], b"even", b"", &[0xFF; 1001]] {
            let mut f = Vec::new();
            write_frame_headers(&mut f, a, b, 1, 2, ACK | PSH, payload);
            assert_eq!(f.len(), 14 + 20 + 20);
            f.extend_from_slice(payload);
            assert_eq!(checksum(0, &f[14..34]), 0, "IPv4 header");
            // Pseudo-header + segment (checksum included) sums to all ones.
            let tcp = &f[34..];
            let mut pseudo = add_words(0, &[10, 0, 0, 1, 10, 0, 0, 2]);
            pseudo += 6 + tcp.len() as u32;
            assert_eq!(checksum(pseudo, tcp), 0, "TCP, payload {}", payload.len());
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            assert_eq!(total, 20 + 20 + payload.len(), "IPv4 total length");
        }
    }

    #[test]
    fn ipv6_tcp_checksum_verifies() {
        let a: SocketAddr = "[fd00::1]:1234".parse().unwrap_or_else(|_| unreachable!());
        let b: SocketAddr = "[fd00::2]:104".parse().unwrap_or_else(|_| unreachable!());
        let mut f = Vec::new();
        write_frame_headers(&mut f, a, b, 7, 9, ACK | PSH, b"odd");
        f.extend_from_slice(b"odd");
        let tcp = &f[14 + 40..];
        let mut pseudo = add_words(0, &f[14 + 8..14 + 40]);
        pseudo += 6 + tcp.len() as u32;
        assert_eq!(checksum(pseudo, tcp), 0);
    }

    fn chunk(n: usize) -> RecordMsg {
        RecordMsg::Data {
            assoc: 1,
            ts_us: 0,
            from: Side::Requestor,
            bytes: Bytes::from(vec![0u8; n]),
            skipped_before: 0,
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_waited_for_up_to_the_bound_then_the_chunk_is_dropped_and_counted() {
        let metrics = Metrics::new(8).unwrap_or_else(|_| unreachable!());
        let (tx, mut rx) = mpsc::channel(1);
        let losses = Arc::new(Losses::new(&metrics));
        let handle = |wait| RecorderHandle {
            tx: tx.clone(),
            wait,
            losses: losses.clone(),
        };
        let bounded = handle(RecordWait::Up(Duration::from_millis(50)));
        assert!(bounded.send(chunk(10)).await, "room: queued at once");
        let started = Instant::now();
        assert!(
            !bounded.send(chunk(300)).await,
            "full for longer than the wait"
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        // The recorder is behind: the next full queue drops at once.
        let started = Instant::now();
        assert!(!bounded.send(chunk(40)).await);
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(!handle(RecordWait::Never).send(chunk(5)).await);
        assert_eq!((bounded.dropped(), bounded.dropped_bytes()), (3, 345));
        assert_eq!(metrics.recorder_dropped_total.get(), 3);
        assert_eq!(metrics.recorder_dropped_bytes_total.get(), 345);
        // Caught up (the queue emptied): waiting again, and room within the wait queues.
        assert_eq!(rx.recv().await.map(|m| m.payload_len()), Some(10));
        assert!(bounded.send(chunk(1)).await);
        let drain = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let first = rx.recv().await.map(|m| m.payload_len());
            let second = rx.recv().await.map(|m| m.payload_len());
            (first, second)
        });
        assert!(bounded.send(chunk(7)).await);
        assert_eq!(
            drain.await.unwrap_or_else(|_| unreachable!()),
            (Some(1), Some(7))
        );
        assert_eq!(bounded.dropped_bytes(), 345);
    }

    #[tokio::test]
    async fn a_slow_recorder_does_not_pace_forwarding_beyond_the_wait() {
        let metrics = Metrics::new(8).unwrap_or_else(|_| unreachable!());
        let (tx, mut rx) = mpsc::channel(8);
        let handle = RecorderHandle {
            tx,
            wait: RecordWait::Up(Duration::from_millis(50)),
            losses: Arc::new(Losses::new(&metrics)),
        };
        // The recorder takes 10 ms per chunk: waiting for each would take a second.
        let recorder = tokio::spawn(async move {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            n
        });
        let started = Instant::now();
        let mut queued = 0;
        for _ in 0..100 {
            queued += u64::from(handle.send(chunk(100)).await);
        }
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert_eq!(queued + handle.dropped(), 100);
        assert!(queued >= 8 + 4 && handle.dropped() > 0, "{queued} queued");
        assert_eq!(handle.dropped_bytes(), 100 * handle.dropped());
        drop(handle);
        assert_eq!(recorder.await.unwrap_or_default(), queued);
    }

    #[test]
    fn event_lines_are_serde_jsons_bytes() {
        use crate::events::{Notice, ProxyEventKind, ProxyNotice};
        use dicomtap_wire::{Event, EventKind};
        let client: SocketAddr = "127.0.0.1:40000".parse().unwrap_or_else(|_| unreachable!());
        let up: SocketAddr = "[fd00::2]:104".parse().unwrap_or_else(|_| unreachable!());
        let notice = |what| ProxyEventKind::Proxy(ProxyNotice { ts_us: 7, what });
        let wire = |kind| {
            ProxyEventKind::Wire(Event {
                ts_us: 9,
                from: Side::Acceptor,
                offset: 42,
                kind,
            })
        };
        let kinds = [
            notice(Notice::Accepted { listen: client }),
            notice(Notice::UpstreamError {
                kind: "refused".into(),
                message: "a \"quoted\" \u{1b} message".into(),
            }),
            notice(Notice::Closed {
                bytes_from_requestor: 1,
                bytes_from_acceptor: u64::MAX,
                duration_us: 0,
                how: "closed".into(),
            }),
            wire(EventKind::ReleaseRq),
            wire(EventKind::Gap { missing: 65_536 }),
            wire(EventKind::StreamEnd {
                how: StreamEnd::Reset,
            }),
        ];
        let mut head = EventHead::default();
        let mut out = Vec::new();
        // Several associations and upstreams, interleaved: the head follows them.
        for (n, kind) in kinds.into_iter().enumerate() {
            let ev = ProxyEvent {
                association: 1 + n as u64 % 2,
                client,
                upstream: (n % 3 != 0).then_some(up),
                kind,
            };
            out.clear();
            assert!(head.write(&mut out, &ev).is_ok());
            let expected = serde_json::to_vec(&ev).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn packet_blocks_are_the_blocks_push_option_builds() {
        // The block as it was built before the options went straight into the buffer.
        fn reference(ts_us: u64, comment: &str, headers: &[u8], payload: &[u8]) -> Vec<u8> {
            let frame_len = headers.len() + payload.len();
            let padded = frame_len.next_multiple_of(4);
            let mut options = Vec::new();
            push_option(&mut options, 1, comment.as_bytes());
            options.extend_from_slice(&[0, 0, 0, 0]);
            let total = (28 + padded + options.len() + 4) as u32;
            let mut b = Vec::new();
            for v in [6, total, 0, (ts_us >> 32) as u32, ts_us as u32] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&(frame_len as u32).to_le_bytes());
            b.extend_from_slice(&(frame_len as u32).to_le_bytes());
            b.extend_from_slice(headers);
            b.extend_from_slice(payload);
            b.resize(b.len() + (padded - frame_len), 0);
            b.extend_from_slice(&options);
            b.extend_from_slice(&total.to_le_bytes());
            b
        }
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let mut f = BlockFile::create(dir.path().join("t.pcapng"), WriteMode::Buffered)
            .unwrap_or_else(|_| unreachable!());
        let long = "c".repeat(70_000);
        for comment in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "dicomtap assoc=7 lost=12",
            &long,
        ] {
            for (headers, payload) in [(&[1u8; 54][..], &[][..]), (&[2; 54], &[3; 1001])] {
                f.buf().clear();
                write_epb(
                    &mut f,
                    0x1_0000_0002,
                    comment,
                    headers,
                    Bytes::copy_from_slice(payload),
                );
                let expected = reference(0x1_0000_0002, comment, headers, payload);
                assert_eq!(f.buf().len() % 4, 0);
                assert!(*f.buf() == expected, "comment of {} bytes", comment.len());
            }
        }
        f.buf().clear();
    }

    #[test]
    fn a_loss_is_noted_after_what_was_left_out_on_purpose() {
        let (mut omitted, mut lost) = (12, 3400);
        assert_eq!(
            note_comment("dicomtap assoc=2", &mut omitted, &mut lost),
            "dicomtap assoc=2 omitted=12 lost=3400"
        );
        assert_eq!((omitted, lost), (0, 0));
        assert_eq!(note_comment("c", &mut 0, &mut 0), "c");
    }

    #[test]
    fn batching_delivers_in_order_and_only_traffic_keeps_it_polling() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut b = Batching::default();
        assert!(tx.try_send(RecordMsg::Flush).is_ok());
        assert!(matches!(b.next(&mut rx), Some(RecordMsg::Flush)));
        assert!(b.last_message.is_none(), "a flush is not traffic");
        let event = || RecordMsg::End {
            assoc: 1,
            ts_us: 0,
            from: Side::Requestor,
            how: StreamEnd::Close,
            skipped_before: 0,
        };
        assert!(tx.try_send(event()).is_ok());
        assert!(tx.try_send(RecordMsg::Close).is_ok());
        assert!(matches!(b.next(&mut rx), Some(RecordMsg::End { .. })));
        assert!(b.last_message.is_some());
        assert!(matches!(b.next(&mut rx), Some(RecordMsg::Close)));
        drop(tx);
        // Busy (a message just came), queue empty, senders gone: ends, no hang.
        assert!(b.next(&mut rx).is_none());
    }
}
