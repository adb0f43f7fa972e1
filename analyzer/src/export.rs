//! Object export: every data set carried by a C-STORE-RQ (including the C-STORE
//! sub-operations of C-GET and C-MOVE, which are plain C-STORE-RQs on some association)
//! written as a DICOM Part-10 file, byte-identical to what the sender sent.
//!
//! The [`Exporter`] is an [`AnalysisSink`]: drive it with an [`crate::analysis::Analysis`]
//! whose engine has `emit_data` set. Data fragments stream to a temporary file as they
//! arrive (an object is never held in memory); the file is renamed into place only when
//! the data set's last fragment arrived with no byte of it missing. An object that lost
//! bytes (capture gap, resynchronisation), was cut by an A-ABORT, a command on the same
//! context or the end of the stream is reported as incomplete and its temporary file is
//! removed: it is never written as if whole.
//!
//! Each object gives one [`ExportRecord`], handed out once the receiver's C-STORE-RSP was
//! seen (or the association ended), so the record says whether the receiver accepted it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dicomtap_wire::event::{Event, EventKind, Side};
use dicomtap_wire::finding::FindingCode;
use dicomtap_wire::status::StatusClass;
use dicomtap_wire::syntax::{
    EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_LE, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_LE,
};
use serde::Serialize;

use crate::analysis::AnalysisSink;
use crate::capture::ConnectionInfo;
use crate::session::Session;

/// dicomtap's Implementation Class UID, written as (0002,0012) of exported files: a UUID
/// derived UID (PS3.5 B.2), chosen once and never changed.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.70536959242189508449597001198774117421";

/// (0002,0013) Implementation Version Name: `DICOMTAP_<version>`, at most 16 characters.
pub fn implementation_version_name() -> String {
    let mut v = format!("DICOMTAP_{}", env!("CARGO_PKG_VERSION"));
    v.truncate(16);
    v
}

/// C-STORE-RQ command field.
const C_STORE_RQ: u16 = 0x0001;
/// C-STORE-RSP command field.
const C_STORE_RSP: u16 = 0x8001;

/// Records waiting for their C-STORE-RSP, per association; beyond this the oldest is
/// handed out without a response (a receiver that never answers cannot grow memory).
const MAX_AWAITING: usize = 1024;
/// Responses seen before their object ended (or started: with a hole in one direction,
/// reassembly holds that direction back while the other flows), kept per association.
const MAX_EARLY: usize = 1024;
/// Bytes buffered when the transfer syntax must be guessed from the data set's start.
const GUESS_BYTES: usize = 8;

/// Failures of the exporter itself (not of the capture).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The File Meta Information (PS3.10 7.1): the 128-byte zero preamble, "DICM" and group
/// 0002 in Explicit VR Little Endian with its group length. UIDs are padded with a NUL,
/// text with a space, to even length.
pub fn file_meta(
    sop_class: &str,
    sop_instance: &str,
    transfer_syntax: &str,
    source_ae: Option<&str>,
) -> Vec<u8> {
    let mut group = Vec::with_capacity(256);
    element(&mut group, 0x0001, *b"OB", &[0x00, 0x01]);
    element(&mut group, 0x0002, *b"UI", &padded(sop_class, 0));
    element(&mut group, 0x0003, *b"UI", &padded(sop_instance, 0));
    element(&mut group, 0x0010, *b"UI", &padded(transfer_syntax, 0));
    element(
        &mut group,
        0x0012,
        *b"UI",
        &padded(IMPLEMENTATION_CLASS_UID, 0),
    );
    element(
        &mut group,
        0x0013,
        *b"SH",
        &padded(&implementation_version_name(), b' '),
    );
    if let Some(ae) = source_ae.filter(|a| !a.is_empty()) {
        let ae: String = ae.chars().take(16).collect();
        element(&mut group, 0x0016, *b"AE", &padded(&ae, b' '));
    }
    let mut out = Vec::with_capacity(128 + 4 + 12 + group.len());
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    let len = u32::try_from(group.len()).unwrap_or(u32::MAX);
    element(&mut out, 0x0000, *b"UL", &len.to_le_bytes());
    out.extend_from_slice(&group);
    out
}

fn padded(s: &str, pad: u8) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    v
}

/// One group-0002 element in Explicit VR Little Endian.
fn element(out: &mut Vec<u8>, elem: u16, vr: [u8; 2], value: &[u8]) {
    out.extend_from_slice(&0x0002u16.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(&vr);
    if matches!(&vr, b"OB" | b"OW" | b"OF" | b"SQ" | b"UT" | b"UN") {
        out.extend_from_slice(&[0, 0]);
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
    } else {
        // Group 0002 values are short: UIDs (64), SH/AE (16).
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(value);
}

/// A SOP Instance UID made safe as a file name: anything but digits and dots becomes
/// `_`, at most 64 characters, never empty.
pub fn sanitize(uid: &str) -> String {
    let s: String = uid
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        format!("_{s}")
    } else {
        s
    }
}

/// The receiver's answer to a C-STORE-RQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreResponse {
    /// Four hex digits, e.g. "0000" or "A700".
    pub code: String,
    pub class: StatusClass,
    pub meaning: String,
}

/// What became of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ExportOutcome {
    /// Written whole to `path`.
    Exported { path: PathBuf },
    /// Bytes of the data set were not seen; nothing was written.
    Incomplete { reason: String },
    /// The data set was whole but writing it failed.
    Failed { error: String },
}

/// One object carried by a C-STORE-RQ and what became of it. The JSON form (one line per
/// object, `"type": "object"`) is part of the documented output of `dicomtap export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRecord {
    /// The association (the `#N` of `dicomtap analyze`).
    pub association: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Capture time of the C-STORE-RQ, microseconds since the epoch.
    pub ts_us: u64,
    /// Who sent the object: the requestor for a plain C-STORE and for C-MOVE
    /// sub-operations (on their own association), the acceptor for C-GET sub-operations.
    pub sender: Side,
    /// The sender's AE title, written as (0002,0016) Source Application Entity Title.
    pub sender_ae: Option<String>,
    pub message_id: Option<u16>,
    pub pc_id: u8,
    /// Affected SOP Class UID of the C-STORE-RQ, written as (0002,0002).
    pub sop_class: Option<String>,
    /// Affected SOP Instance UID of the C-STORE-RQ, written as (0002,0003) and used to
    /// name the file.
    pub sop_instance: Option<String>,
    /// (0008,0016) and (0008,0018) as found in the data set itself, when the engine's
    /// peek could read them. A sender whose command and data set disagree is worth
    /// knowing about; the file meta follows the command.
    pub dataset_sop_class: Option<String>,
    pub dataset_sop_instance: Option<String>,
    /// The transfer syntax of the data set: the one accepted for its presentation context.
    pub transfer_syntax: String,
    /// False when the negotiation was not captured and the transfer syntax was guessed
    /// from the data set (Implicit or Explicit VR Little Endian only).
    pub transfer_syntax_negotiated: bool,
    /// Data set bytes seen in the capture (for an incomplete object, the bytes known to
    /// be missing are not counted).
    pub bytes: u64,
    #[serde(flatten)]
    pub outcome: ExportOutcome,
    /// The receiver's C-STORE-RSP, when it was seen.
    pub response: Option<StoreResponse>,
    /// The receiver answered with a failure (or cancel) status: the object is exported
    /// all the same, but the receiver did not keep it.
    pub refused: bool,
}

/// Totals of an export run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportStats {
    pub exported: u64,
    pub incomplete: u64,
    pub failed: u64,
    pub refused: u64,
    pub bytes_written: u64,
}

/// A C-STORE-RQ whose data set has not started yet.
#[derive(Debug, Clone)]
struct StoreRq {
    ts_us: u64,
    message_id: Option<u16>,
    sop_class: Option<String>,
    sop_instance: Option<String>,
    /// Bytes of this direction were lost between the command and its data set.
    tainted: Option<String>,
}

/// An object being written.
struct Writing {
    rq: StoreRq,
    pc_id: u8,
    transfer_syntax: Option<String>,
    /// Set when the transfer syntax must be guessed: the first bytes, until enough are seen.
    head: Vec<u8>,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    bytes: u64,
    /// Why the object cannot be whole (the first reason seen).
    lost: Option<String>,
    /// A write failed; the object is reported as failed at its end.
    error: Option<String>,
    negotiated: bool,
    /// SOP class and instance UIDs read from the data set by the engine's peek.
    peeked: Option<(Option<String>, Option<String>)>,
}

enum InFlight {
    Writing(Box<Writing>),
    /// A data set that is not a C-STORE object (C-FIND identifiers, N-* data sets) or
    /// whose command was never seen: skipped to its last fragment.
    Ignored,
}

/// A C-STORE-RSP whose object has not been seen (yet).
struct Early {
    response: StoreResponse,
    ts_us: u64,
    pc_id: u8,
    sop_class: Option<String>,
    sop_instance: Option<String>,
}

#[derive(Default)]
struct Conn {
    calling_ae: Option<String>,
    called_ae: Option<String>,
    /// Accepted presentation contexts: ID -> transfer syntax.
    accepted: HashMap<u8, String>,
    pending: HashMap<(Side, u8), StoreRq>,
    in_flight: HashMap<(Side, u8), InFlight>,
    /// Finished objects waiting for their C-STORE-RSP: key (sender, message id).
    awaiting: VecDeque<((Side, Option<u16>), ExportRecord)>,
    /// Responses seen before their object finished.
    early: VecDeque<((Side, u16), Early)>,
}

/// Writes C-STORE objects to `DIR/<association>/<SOP instance UID>.dcm`; see the module
/// documentation. `report` is called once per object.
pub struct Exporter<F: FnMut(&ExportRecord)> {
    dir: PathBuf,
    conns: HashMap<u64, Conn>,
    report: F,
    stats: ExportStats,
    next_tmp: u64,
}

impl<F: FnMut(&ExportRecord)> Exporter<F> {
    /// Exports under `dir`, which must exist. Association directories are created inside
    /// it (mode 0700), files with mode 0600: exports hold patient data.
    pub fn new(dir: impl Into<PathBuf>, report: F) -> Self {
        Exporter {
            dir: dir.into(),
            conns: HashMap::new(),
            report,
            stats: ExportStats::default(),
            next_tmp: 0,
        }
    }

    pub fn stats(&self) -> &ExportStats {
        &self.stats
    }

    /// Hands out every record still held (objects whose response was not seen and
    /// objects still in flight, reported incomplete). Call when the input ended without
    /// the analysis closing its connections.
    pub fn finish(&mut self) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, None);
        }
    }

    fn close(&mut self, id: u64, info: Option<&ConnectionInfo>) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        let keys: Vec<(Side, u8)> = conn.in_flight.keys().copied().collect();
        for key in keys {
            if let Some(InFlight::Writing(w)) = conn.in_flight.remove(&key) {
                let rec = self.abandon(
                    id,
                    info,
                    &mut conn,
                    key.0,
                    *w,
                    "the association ended before the data set's last fragment",
                );
                conn.awaiting.push_back(((key.0, rec.message_id), rec));
            }
        }
        while let Some((_, rec)) = conn.awaiting.pop_front() {
            self.hand_out(rec);
        }
        // Answers to requests that were never seen: the request and its data set were
        // lost (capture gap, or a capture that started late). Worth reporting: the
        // receiver has an object this capture cannot give back.
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        while let Some(((sender, mid), early)) = conn.early.pop_front() {
            let ts = conn.accepted.get(&early.pc_id).cloned();
            let rec = ExportRecord {
                association: id,
                client: info.map_or(unspecified, |i| i.client),
                server: info.map_or(unspecified, |i| i.server),
                ts_us: early.ts_us,
                sender,
                sender_ae: sender_ae(&conn, sender).map(str::to_string),
                message_id: Some(mid),
                pc_id: early.pc_id,
                sop_class: early.sop_class,
                sop_instance: early.sop_instance,
                dataset_sop_class: None,
                dataset_sop_instance: None,
                transfer_syntax_negotiated: ts.is_some(),
                transfer_syntax: ts.unwrap_or_default(),
                bytes: 0,
                outcome: ExportOutcome::Incomplete {
                    reason: "only the C-STORE-RSP was captured: the request and its data set were not seen".into(),
                },
                response: Some(early.response),
                refused: false,
            };
            self.hand_out(rec);
        }
    }

    fn hand_out(&mut self, mut rec: ExportRecord) {
        rec.refused = rec
            .response
            .as_ref()
            .is_some_and(|r| matches!(r.class, StatusClass::Failure | StatusClass::Cancel));
        match rec.outcome {
            ExportOutcome::Exported { .. } => self.stats.exported += 1,
            ExportOutcome::Incomplete { .. } => self.stats.incomplete += 1,
            ExportOutcome::Failed { .. } => self.stats.failed += 1,
        }
        if rec.refused {
            self.stats.refused += 1;
        }
        (self.report)(&rec);
    }

    fn record(
        &self,
        id: u64,
        info: Option<&ConnectionInfo>,
        conn: &Conn,
        sender: Side,
        w: &Writing,
        outcome: ExportOutcome,
    ) -> ExportRecord {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        ExportRecord {
            association: id,
            client: info.map_or(unspecified, |i| i.client),
            server: info.map_or(unspecified, |i| i.server),
            ts_us: w.rq.ts_us,
            sender,
            sender_ae: sender_ae(conn, sender).map(str::to_string),
            message_id: w.rq.message_id,
            pc_id: w.pc_id,
            sop_class: w.rq.sop_class.clone(),
            sop_instance: w.rq.sop_instance.clone(),
            dataset_sop_class: w.peeked.as_ref().and_then(|p| p.0.clone()),
            dataset_sop_instance: w.peeked.as_ref().and_then(|p| p.1.clone()),
            transfer_syntax: w
                .transfer_syntax
                .clone()
                .unwrap_or_else(|| guess_transfer_syntax(&w.head).to_string()),
            transfer_syntax_negotiated: w.negotiated,
            bytes: w.bytes,
            outcome,
            response: None,
            refused: false,
        }
    }

    /// Drops an object's temporary file and makes its incomplete record.
    fn abandon(
        &mut self,
        id: u64,
        info: Option<&ConnectionInfo>,
        conn: &mut Conn,
        sender: Side,
        mut w: Writing,
        why: &str,
    ) -> ExportRecord {
        drop(w.file.take());
        remove_quietly(&w.tmp);
        let reason = w.lost.clone().unwrap_or_else(|| why.to_string());
        let mut rec = self.record(
            id,
            info,
            conn,
            sender,
            &w,
            ExportOutcome::Incomplete { reason },
        );
        rec.response = take_early(&mut conn.early, sender, w.rq.message_id);
        rec
    }

    fn on_event(&mut self, info: &ConnectionInfo, e: &Event) {
        let id = info.id.0;
        let mut conn = self.conns.remove(&id).unwrap_or_default();
        self.apply(info, &mut conn, e);
        // Records whose response arrived, oldest first; and the overflow of the queue.
        while conn.awaiting.len() > MAX_AWAITING {
            if let Some((_, rec)) = conn.awaiting.pop_front() {
                self.hand_out(rec);
            }
        }
        while conn
            .awaiting
            .front()
            .is_some_and(|(_, r)| r.response.is_some())
        {
            if let Some((_, rec)) = conn.awaiting.pop_front() {
                self.hand_out(rec);
            }
        }
        self.conns.insert(id, conn);
    }

    fn apply(&mut self, info: &ConnectionInfo, conn: &mut Conn, e: &Event) {
        let id = info.id.0;
        let from = e.from;
        match &e.kind {
            EventKind::AssociateRq(rq) => {
                conn.calling_ae = Some(rq.calling_ae.clone());
                conn.called_ae = Some(rq.called_ae.clone());
            }
            EventKind::AssociateAc(ac) => {
                conn.accepted = ac
                    .results
                    .iter()
                    .filter(|r| r.accepted())
                    .filter_map(|r| Some((r.id, r.transfer_syntax.clone()?)))
                    .collect();
                if conn.calling_ae.is_none() {
                    conn.calling_ae = Some(ac.calling_ae.clone());
                    conn.called_ae = Some(ac.called_ae.clone());
                }
            }
            EventKind::Command(c) => {
                let key = (from, c.pc_id);
                if let Some(InFlight::Writing(w)) = conn.in_flight.remove(&key) {
                    let rec = self.abandon(id, Some(info), conn, from, *w, "a command arrived on the same presentation context before the data set's last fragment");
                    conn.awaiting.push_back(((from, rec.message_id), rec));
                }
                let cmd = &c.command;
                if cmd.command_field == C_STORE_RQ && cmd.has_dataset {
                    conn.pending.insert(
                        key,
                        StoreRq {
                            ts_us: e.ts_us,
                            message_id: cmd.message_id,
                            sop_class: cmd.affected_sop_class.clone(),
                            sop_instance: cmd.affected_sop_instance.clone(),
                            tainted: None,
                        },
                    );
                } else {
                    conn.pending.remove(&key);
                }
                if cmd.command_field == C_STORE_RSP
                    && let (Some(status), Some(rid)) = (&cmd.status, cmd.responded_to)
                {
                    let resp = StoreResponse {
                        code: status.code.clone(),
                        class: status.class,
                        meaning: status.meaning.to_string(),
                    };
                    let sender = from.peer();
                    if let Some((_, rec)) = conn
                        .awaiting
                        .iter_mut()
                        .find(|((s, m), r)| *s == sender && *m == Some(rid) && r.response.is_none())
                    {
                        rec.response = Some(resp);
                    } else {
                        // The object has not ended yet, or (a hole in the capture held its
                        // bytes back) has not even started: keep the answer for it.
                        if conn.early.len() >= MAX_EARLY {
                            conn.early.pop_front();
                        }
                        conn.early.push_back((
                            (sender, rid),
                            Early {
                                response: resp,
                                ts_us: e.ts_us,
                                pc_id: c.pc_id,
                                sop_class: cmd.affected_sop_class.clone(),
                                sop_instance: cmd.affected_sop_instance.clone(),
                            },
                        ));
                    }
                }
            }
            EventKind::DataFragment(f) => {
                let key = (from, f.pc_id);
                if !conn.in_flight.contains_key(&key) {
                    let started = match conn.pending.remove(&key) {
                        Some(rq) => match self.start(id, conn, from, f.pc_id, rq) {
                            Ok(w) => InFlight::Writing(Box::new(w)),
                            Err((rq, err)) => {
                                let w = Writing {
                                    transfer_syntax: conn.accepted.get(&f.pc_id).cloned(),
                                    negotiated: conn.accepted.contains_key(&f.pc_id),
                                    rq,
                                    pc_id: f.pc_id,
                                    head: Vec::new(),
                                    tmp: PathBuf::new(),
                                    file: None,
                                    bytes: 0,
                                    lost: None,
                                    error: Some(err.to_string()),
                                    peeked: None,
                                };
                                InFlight::Writing(Box::new(w))
                            }
                        },
                        None => InFlight::Ignored,
                    };
                    conn.in_flight.insert(key, started);
                }
                let ae = conn_ae(conn, from);
                if let Some(InFlight::Writing(w)) = conn.in_flight.get_mut(&key) {
                    w.bytes += f.bytes.len() as u64;
                    if w.error.is_none()
                        && w.lost.is_none()
                        && let Err(err) = write_fragment(ae, w, &f.bytes)
                    {
                        w.error = Some(err.to_string());
                    }
                }
                if f.last {
                    match conn.in_flight.remove(&key) {
                        Some(InFlight::Writing(w)) => {
                            let rec = self.complete(id, info, conn, from, *w);
                            conn.awaiting.push_back(((from, rec.message_id), rec));
                        }
                        Some(InFlight::Ignored) | None => {}
                    }
                }
            }
            EventKind::DatasetPeek(p) => {
                if let Some(InFlight::Writing(w)) = conn.in_flight.get_mut(&(from, p.pc_id)) {
                    w.peeked = Some((
                        p.peek.sop_class_uid.clone(),
                        p.peek.sop_instance_uid.clone(),
                    ));
                }
            }
            EventKind::Gap { missing } => {
                self.taint(
                    conn,
                    from,
                    &format!("{missing} bytes of the stream were missing from the capture"),
                );
            }
            EventKind::Omitted { bytes } => {
                self.taint(
                    conn,
                    from,
                    &format!(
                        "{bytes} bytes of the data set were left out of the recording on \
                         purpose (a recording made with --payload headers keeps only the \
                         start of each data set)"
                    ),
                );
            }
            EventKind::Resync { skipped } => {
                self.taint(
                    conn,
                    from,
                    &format!("{skipped} bytes were skipped to find the next PDU boundary"),
                );
            }
            EventKind::Finding(f) if f.code == FindingCode::IncompleteMessage => {
                // The engine gave up on data sets of this direction (gap, end of stream):
                // none of them gets a last fragment any more.
                self.end_all(id, info, conn, Some(from), &f.message);
            }
            EventKind::Abort(_) => {
                self.end_all(
                    id,
                    info,
                    conn,
                    None,
                    "the association was aborted (A-ABORT)",
                );
            }
            EventKind::StreamEnd { .. } => {
                self.end_all(
                    id,
                    info,
                    conn,
                    Some(from),
                    "the stream ended before the data set's last fragment",
                );
            }
            _ => {}
        }
    }

    /// Marks everything in flight or announced in `from`'s direction as missing bytes.
    fn taint(&mut self, conn: &mut Conn, from: Side, why: &str) {
        for (key, f) in conn.in_flight.iter_mut() {
            if key.0 == from
                && let InFlight::Writing(w) = f
                && w.lost.is_none()
            {
                w.lost = Some(why.to_string());
                drop(w.file.take());
                remove_quietly(&w.tmp);
            }
        }
        for (key, rq) in conn.pending.iter_mut() {
            if key.0 == from && rq.tainted.is_none() {
                rq.tainted = Some(why.to_string());
            }
        }
    }

    /// Reports every object in flight from `side` (or both sides) as incomplete.
    fn end_all(
        &mut self,
        id: u64,
        info: &ConnectionInfo,
        conn: &mut Conn,
        side: Option<Side>,
        why: &str,
    ) {
        let keys: Vec<(Side, u8)> = conn
            .in_flight
            .keys()
            .copied()
            .filter(|k| side.is_none_or(|s| s == k.0))
            .collect();
        for key in keys {
            if let Some(InFlight::Writing(w)) = conn.in_flight.remove(&key) {
                let rec = self.abandon(id, Some(info), conn, key.0, *w, why);
                conn.awaiting.push_back(((key.0, rec.message_id), rec));
            }
        }
    }

    /// Opens the temporary file of a new object. The file meta is written as soon as the
    /// transfer syntax is known (at once when it was negotiated).
    fn start(
        &mut self,
        id: u64,
        conn: &Conn,
        from: Side,
        pc_id: u8,
        rq: StoreRq,
    ) -> Result<Writing, (StoreRq, ExportError)> {
        let transfer_syntax = conn.accepted.get(&pc_id).cloned();
        let negotiated = transfer_syntax.is_some();
        let dir = self.dir.join(id.to_string());
        if let Err(e) = create_private_dir(&dir) {
            return Err((rq, io_err(&dir)(e)));
        }
        let (tmp, file) = loop {
            self.next_tmp += 1;
            let tmp = dir.join(format!(".partial-{}-{}", std::process::id(), self.next_tmp));
            match create_private(&tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err((rq, io_err(&tmp)(e))),
            }
        };
        let lost = rq.tainted.clone();
        let mut w = Writing {
            rq,
            pc_id,
            transfer_syntax,
            head: Vec::new(),
            tmp,
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            bytes: 0,
            lost,
            error: None,
            negotiated,
            peeked: None,
        };
        if w.lost.is_some() {
            drop(w.file.take());
            remove_quietly(&w.tmp);
        } else if let Some(ts) = w.transfer_syntax.clone()
            && let Err(e) = write_meta(conn_ae(conn, from), &mut w, &ts)
        {
            w.error = Some(e.to_string());
        }
        Ok(w)
    }

    /// The last fragment arrived: rename into place, or report why not.
    fn complete(
        &mut self,
        id: u64,
        info: &ConnectionInfo,
        conn: &mut Conn,
        from: Side,
        mut w: Writing,
    ) -> ExportRecord {
        if w.lost.is_some() {
            return self.abandon(id, Some(info), conn, from, w, "bytes missing");
        }
        let result = match w.error.take() {
            Some(error) => Err(error),
            None => finish_file(conn_ae(conn, from), &mut w)
                .and_then(|()| {
                    let path = self.final_path(id, w.rq.sop_instance.as_deref(), w.rq.message_id);
                    std::fs::rename(&w.tmp, &path).map_err(io_err(&path))?;
                    Ok(path)
                })
                .map_err(|e| e.to_string()),
        };
        let outcome = match result {
            Ok(path) => {
                self.stats.bytes_written += w.bytes;
                ExportOutcome::Exported { path }
            }
            Err(error) => {
                drop(w.file.take());
                remove_quietly(&w.tmp);
                ExportOutcome::Failed { error }
            }
        };
        let mut rec = self.record(id, Some(info), conn, from, &w, outcome);
        rec.response = take_early(&mut conn.early, from, w.rq.message_id);
        rec
    }

    /// `DIR/<association>/<instance>.dcm`, with `-2`, `-3`... when an object with the same
    /// instance UID was already exported in this association.
    fn final_path(&self, id: u64, instance: Option<&str>, message_id: Option<u16>) -> PathBuf {
        let base = match instance {
            Some(uid) if !uid.is_empty() => sanitize(uid),
            _ => format!(
                "message-{}",
                message_id.map_or_else(|| "unknown".into(), |m| m.to_string())
            ),
        };
        let dir = self.dir.join(id.to_string());
        let mut path = dir.join(format!("{base}.dcm"));
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = dir.join(format!("{base}-{n}.dcm"));
        }
        path
    }
}

impl<F: FnMut(&ExportRecord)> AnalysisSink for Exporter<F> {
    fn event(&mut self, conn: &ConnectionInfo, event: &Event) {
        self.on_event(conn, event);
    }

    fn session(&mut self, conn: &ConnectionInfo, _session: Session) {
        self.close(conn.id.0, Some(conn));
    }
}

fn take_early(
    early: &mut VecDeque<((Side, u16), Early)>,
    sender: Side,
    message_id: Option<u16>,
) -> Option<StoreResponse> {
    let mid = message_id?;
    let pos = early.iter().position(|(k, _)| *k == (sender, mid))?;
    early.remove(pos).map(|(_, r)| r.response)
}

/// The sender's AE title: the calling AE for the requestor, the called AE for the acceptor.
fn sender_ae(conn: &Conn, sender: Side) -> Option<&str> {
    match sender {
        Side::Requestor => conn.calling_ae.as_deref(),
        Side::Acceptor => conn.called_ae.as_deref(),
    }
}

fn conn_ae(conn: &Conn, sender: Side) -> Option<String> {
    sender_ae(conn, sender).map(str::to_string)
}

fn write_meta(ae: Option<String>, w: &mut Writing, ts: &str) -> Result<(), ExportError> {
    let meta = file_meta(
        w.rq.sop_class.as_deref().unwrap_or_default(),
        w.rq.sop_instance.as_deref().unwrap_or_default(),
        ts,
        ae.as_deref(),
    );
    let tmp = w.tmp.clone();
    if let Some(f) = w.file.as_mut() {
        f.write_all(&meta).map_err(io_err(&tmp))?;
    }
    Ok(())
}

fn write_fragment(ae: Option<String>, w: &mut Writing, bytes: &[u8]) -> Result<(), ExportError> {
    if w.transfer_syntax.is_none() {
        // Negotiation not seen: hold the first bytes to tell implicit from explicit VR.
        w.head.extend_from_slice(bytes);
        if w.head.len() < GUESS_BYTES {
            return Ok(());
        }
        return flush_head(ae, w);
    }
    let tmp = w.tmp.clone();
    if let Some(f) = w.file.as_mut() {
        f.write_all(bytes).map_err(io_err(&tmp))?;
    }
    Ok(())
}

fn flush_head(ae: Option<String>, w: &mut Writing) -> Result<(), ExportError> {
    let ts = guess_transfer_syntax(&w.head).to_string();
    w.transfer_syntax = Some(ts.clone());
    write_meta(ae, w, &ts)?;
    let head = std::mem::take(&mut w.head);
    let tmp = w.tmp.clone();
    if let Some(f) = w.file.as_mut() {
        f.write_all(&head).map_err(io_err(&tmp))?;
    }
    w.head = head;
    Ok(())
}

fn finish_file(ae: Option<String>, w: &mut Writing) -> Result<(), ExportError> {
    if w.transfer_syntax.is_none() {
        flush_head(ae, w)?;
    }
    let tmp = w.tmp.clone();
    if let Some(f) = w.file.take() {
        let file = f.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
        file.sync_data().map_err(io_err(&tmp))?;
    }
    Ok(())
}

/// Explicit VR Little Endian when the bytes after the first tag are two upper-case
/// letters (a VR), else Implicit VR Little Endian.
fn guess_transfer_syntax(head: &[u8]) -> &'static str {
    match head.get(4..6) {
        Some([a, b]) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => EXPLICIT_LE,
        _ => IMPLICIT_LE,
    }
}

fn remove_quietly(path: &Path) {
    if !path.as_os_str().is_empty() {
        let _ = std::fs::remove_file(path);
    }
}

fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::net::SocketAddr;

    use dicomtap_wire::dimse::{Command, encode_command};
    use dicomtap_wire::status::classify;
    use dicomtap_wire::{Conversation, EngineConfig};

    use super::*;
    use crate::capture::{ConnId, RequestorBy};

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    fn pdata(pc: u8, control: u8, body: &[u8]) -> Vec<u8> {
        let item = 2 + body.len() as u32;
        let mut v = vec![0x04, 0];
        v.extend_from_slice(&(item + 4).to_be_bytes());
        v.extend_from_slice(&item.to_be_bytes());
        v.push(pc);
        v.push(control);
        v.extend_from_slice(body);
        v
    }

    fn store_rq(id: u16, instance: &str) -> Vec<u8> {
        let mut c = Command::new(C_STORE_RQ);
        c.message_id = Some(id);
        c.affected_sop_class = Some(CT.into());
        c.affected_sop_instance = Some(instance.into());
        c.priority = Some(0);
        c.has_dataset = true;
        encode_command(&c)
    }

    fn store_rsp(id: u16, code: u16) -> Vec<u8> {
        let mut c = Command::new(C_STORE_RSP);
        c.responded_to = Some(id);
        c.affected_sop_class = Some(CT.into());
        c.status = Some(classify(code, C_STORE_RSP));
        encode_command(&c)
    }

    /// An explicit VR LE data set: (0008,0016) UI and (0008,0018) UI, then an OB blob.
    fn dataset(instance: &str, blob: usize) -> Vec<u8> {
        let mut d = Vec::new();
        let mut el = |e: u16, vr: &[u8; 2], v: &[u8]| {
            d.extend_from_slice(&0x0008u16.to_le_bytes());
            d.extend_from_slice(&e.to_le_bytes());
            d.extend_from_slice(vr);
            d.extend_from_slice(&(v.len() as u16).to_le_bytes());
            d.extend_from_slice(v);
        };
        el(0x0016, b"UI", &padded(CT, 0));
        el(0x0018, b"UI", &padded(instance, 0));
        d.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
        d.extend_from_slice(&(blob as u32).to_le_bytes());
        d.extend((0..blob).map(|i| (i % 251) as u8));
        d
    }

    type Report = Box<dyn FnMut(&ExportRecord)>;

    struct Run {
        conv: Conversation,
        exporter: Exporter<Report>,
        records: std::rc::Rc<std::cell::RefCell<Vec<ExportRecord>>>,
        info: ConnectionInfo,
        _dir: tempfile::TempDir,
        dir: PathBuf,
    }

    impl Run {
        fn new() -> Run {
            let dir = tempfile::tempdir().unwrap();
            let records = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let r2 = records.clone();
            let report: Report = Box::new(move |r: &ExportRecord| r2.borrow_mut().push(r.clone()));
            Run {
                conv: Conversation::new(EngineConfig {
                    emit_data: true,
                    ..EngineConfig::default()
                }),
                exporter: Exporter::new(dir.path(), report),
                records,
                info: ConnectionInfo {
                    id: ConnId(7),
                    client: SocketAddr::from(([10, 0, 0, 1], 40000)),
                    server: SocketAddr::from(([10, 0, 0, 2], 104)),
                    first_ts_us: 0,
                    requestor_known_by: RequestorBy::SynSeen,
                },
                dir: dir.path().to_path_buf(),
                _dir: dir,
            }
        }

        fn feed(&mut self, from: Side, bytes: &[u8]) {
            self.conv.feed(from, 1, bytes);
            self.drain();
        }

        fn drain(&mut self) {
            while let Some(e) = self.conv.poll() {
                self.exporter.event(&self.info, &e);
            }
        }

        fn close(&mut self) -> Vec<ExportRecord> {
            self.conv
                .end(Side::Requestor, 2, dicomtap_wire::StreamEnd::Close);
            self.conv
                .end(Side::Acceptor, 2, dicomtap_wire::StreamEnd::Close);
            self.drain();
            self.exporter.finish();
            self.records.borrow().clone()
        }

        /// Sends one object in two data PDUs.
        fn send(&mut self, id: u16, instance: &str, ds: &[u8]) {
            self.feed(Side::Requestor, &pdata(1, 0x03, &store_rq(id, instance)));
            let half = ds.len() / 2;
            self.feed(Side::Requestor, &pdata(1, 0x00, &ds[..half]));
            self.feed(Side::Requestor, &pdata(1, 0x02, &ds[half..]));
        }
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                v.extend(files(&e.path()));
            } else {
                v.push(e.path());
            }
        }
        v
    }

    #[test]
    fn meta_is_well_formed() {
        let m = file_meta(CT, "1.2.3", EXPLICIT_LE, Some("SCU"));
        assert!(m[..128].iter().all(|&b| b == 0));
        assert_eq!(&m[128..132], b"DICM");
        assert_eq!(&m[132..138], &[2, 0, 0, 0, b'U', b'L']);
        let gl = u32::from_le_bytes(m[140..144].try_into().unwrap()) as usize;
        assert_eq!(gl, m.len() - 144);
        // (0002,0001) OB 00\01
        assert_eq!(
            &m[144..158],
            &[2, 0, 1, 0, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 1]
        );
        // odd-length UID NUL-padded, AE space-padded
        assert!(m.windows(6).any(|w| w == b"1.2.3\0"));
        assert!(m.windows(4).any(|w| w == b"SCU "));
        assert!(implementation_version_name().len() <= 16);
        assert_eq!(sanitize("1.2/../x"), "1.2_..__");
        assert_eq!(sanitize(".."), "_..");
        assert_eq!(sanitize(""), "_");
    }

    #[test]
    fn whole_object_is_exported_byte_identical() {
        let mut run = Run::new();
        let ds = dataset("1.2.3.4", 5000);
        run.send(1, "1.2.3.4", &ds);
        run.feed(Side::Acceptor, &pdata(1, 0x03, &store_rsp(1, 0xA700)));
        let recs = run.close();
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        let ExportOutcome::Exported { path } = &r.outcome else {
            panic!("{r:?}")
        };
        assert_eq!(path, &run.dir.join("7").join("1.2.3.4.dcm"));
        let bytes = std::fs::read(path).unwrap();
        let meta = file_meta(CT, "1.2.3.4", EXPLICIT_LE, None);
        assert_eq!(&bytes[..meta.len()], &meta[..]);
        assert_eq!(&bytes[meta.len()..], &ds[..]);
        // Negotiation not seen: the transfer syntax was guessed, and says so.
        assert!(!r.transfer_syntax_negotiated);
        assert_eq!(r.transfer_syntax, EXPLICIT_LE);
        assert_eq!(r.response.as_ref().unwrap().code, "A700");
        assert!(r.refused);
        assert_eq!(files(&run.dir).len(), 1);
    }

    #[test]
    fn gap_between_data_pdus_makes_the_object_incomplete() {
        let mut run = Run::new();
        let ds = dataset("1.2.3.5", 6000);
        run.feed(Side::Requestor, &pdata(1, 0x03, &store_rq(1, "1.2.3.5")));
        run.feed(Side::Requestor, &pdata(1, 0x00, &ds[..2000]));
        // A whole P-DATA PDU of the data set was not captured: the gap falls on a PDU
        // boundary, the engine resynchronises on the next PDU.
        let lost = pdata(1, 0x00, &ds[2000..4000]);
        run.conv.gap(Side::Requestor, 1, lost.len() as u64);
        run.drain();
        // (The engine does not mark the data set as incomplete for a gap on a PDU
        // boundary; the exporter goes by the Gap event itself.)
        run.feed(Side::Requestor, &pdata(1, 0x02, &ds[4000..]));
        run.send(2, "1.2.3.6", &dataset("1.2.3.6", 100));
        let recs = run.close();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(
            matches!(&recs[0].outcome, ExportOutcome::Incomplete { reason } if reason.contains("missing")),
            "{:?}",
            recs[0]
        );
        assert!(matches!(recs[1].outcome, ExportOutcome::Exported { .. }));
        assert_eq!(files(&run.dir).len(), 1);
    }

    #[test]
    fn gap_inside_a_fragment_makes_the_object_incomplete() {
        let mut run = Run::new();
        let ds = dataset("1.2.3.7", 6000);
        run.feed(Side::Requestor, &pdata(1, 0x03, &store_rq(1, "1.2.3.7")));
        let pdu = pdata(1, 0x02, &ds);
        run.feed(Side::Requestor, &pdu[..1000]);
        run.conv.gap(Side::Requestor, 1, 1000);
        run.drain();
        run.feed(Side::Requestor, &pdu[2000..]);
        let recs = run.close();
        assert_eq!(recs.len(), 1);
        assert!(matches!(recs[0].outcome, ExportOutcome::Incomplete { .. }));
        assert_eq!(recs[0].bytes, ds.len() as u64 - 1000);
        assert!(files(&run.dir).is_empty(), "{:?}", files(&run.dir));
    }

    #[test]
    fn bytes_left_out_on_purpose_make_the_object_incomplete_without_a_gap_finding() {
        let mut run = Run::new();
        let ds = dataset("1.2.3.9", 6000);
        run.feed(Side::Requestor, &pdata(1, 0x03, &store_rq(1, "1.2.3.9")));
        let pdu = pdata(1, 0x02, &ds);
        run.feed(Side::Requestor, &pdu[..1000]);
        run.conv.omitted(Side::Requestor, 1, 1000);
        let mut findings = Vec::new();
        let mut peeked = false;
        while let Some(e) = run.conv.poll() {
            match &e.kind {
                EventKind::Finding(f) => findings.push(f.code),
                EventKind::DatasetPeek(p) => {
                    peeked = p.peek.sop_instance_uid.as_deref() == Some("1.2.3.9");
                }
                _ => {}
            }
            run.exporter.event(&run.info, &e);
        }
        run.feed(Side::Requestor, &pdu[2000..]);
        let recs = run.close();
        assert!(findings.is_empty(), "{findings:?}");
        assert!(peeked, "the kept start of the data set is peeked");
        assert_eq!(recs.len(), 1);
        match &recs[0].outcome {
            ExportOutcome::Incomplete { reason } => {
                assert!(reason.contains("on purpose"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn abort_and_stream_end_make_objects_incomplete() {
        let mut run = Run::new();
        let ds = dataset("1.2.3.8", 3000);
        run.feed(Side::Requestor, &pdata(1, 0x03, &store_rq(1, "1.2.3.8")));
        run.feed(Side::Requestor, &pdata(1, 0x00, &ds[..1000]));
        run.feed(Side::Acceptor, &[0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0]);
        run.feed(Side::Requestor, &pdata(3, 0x03, &store_rq(2, "1.2.3.9")));
        run.feed(Side::Requestor, &pdata(3, 0x00, &ds[..1000]));
        let recs = run.close();
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(
            matches!(&recs[0].outcome, ExportOutcome::Incomplete { reason } if reason.contains("A-ABORT"))
        );
        assert!(matches!(&recs[1].outcome, ExportOutcome::Incomplete { .. }));
        assert!(files(&run.dir).is_empty(), "{:?}", files(&run.dir));
    }

    #[test]
    fn non_store_data_sets_are_not_exported() {
        let mut run = Run::new();
        let mut c = Command::new(0x0020);
        c.message_id = Some(1);
        c.affected_sop_class = Some("1.2.840.10008.5.1.4.1.2.2.1".into());
        c.has_dataset = true;
        run.feed(Side::Requestor, &pdata(1, 0x03, &encode_command(&c)));
        run.feed(Side::Requestor, &pdata(1, 0x02, &dataset("1.2.3.10", 10)));
        assert!(run.close().is_empty());
        assert!(files(&run.dir).is_empty());
    }
}
