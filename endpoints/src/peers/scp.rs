//! An embedded storage SCP: accepts Verification and the storage SOP classes it is told,
//! in Implicit or Explicit VR Little Endian, answers C-ECHO and C-STORE, and keeps a list
//! of what it received (with the data set bytes in memory, or as Part-10 files in a
//! directory).
//!
//! One std thread accepts, one std thread per association (dicom-ul's association API is
//! blocking). It binds 127.0.0.1 only: it accepts any AE title and stores what it gets,
//! which is right for a demo and a test peer and wrong for anything reachable.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dicom_ul::association::Association;
use dicom_ul::association::server::{AcceptAny, DefaultNegotiation, ServerAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use serde::Serialize;
use tracing::{debug, info, warn};

use super::dimse::{self, CommandSet};
use super::{
    EXPLICIT_VR_LE, EncodedObject, IMPLICIT_VR_LE, NegotiatedContext, PeerError, VERIFICATION,
    trim_uid,
};

/// Where received objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScpStorage {
    /// Keep data set bytes in memory, up to this many bytes in total; past it only the
    /// list entry is kept (so a long-running demo SCP cannot eat the machine).
    Memory { max_total_bytes: u64 },
    /// Write each object as a Part-10 file `<SOP Instance UID>.dcm` in this directory.
    Directory(PathBuf),
}

/// Storage SCP settings.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    pub ae_title: String,
    /// Port on 127.0.0.1; 0 lets the system pick one.
    pub port: u16,
    /// Storage SOP classes to accept (Verification is always accepted).
    pub sop_classes: Vec<String>,
    /// Transfer syntaxes to accept. The requestor's order decides: the first one it
    /// proposes that is in this list wins (dicom-ul's negotiation).
    pub transfer_syntaxes: Vec<String>,
    pub storage: ScpStorage,
    /// Maximum PDU length the SCP announces and accepts.
    pub max_pdu_length: u32,
    /// A data set larger than this is refused with A700 (Out of Resources).
    pub max_object_bytes: u64,
    /// An association silent for this long is dropped, so threads never pile up.
    pub idle_timeout: Duration,
}

impl Default for ScpConfig {
    fn default() -> Self {
        ScpConfig {
            ae_title: "DEMO-SCP".into(),
            port: 0,
            sop_classes: default_storage_sop_classes(),
            transfer_syntaxes: vec![EXPLICIT_VR_LE.into(), IMPLICIT_VR_LE.into()],
            storage: ScpStorage::Memory {
                max_total_bytes: 256 * 1024 * 1024,
            },
            max_pdu_length: 16_384,
            max_object_bytes: 512 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A handful of common storage SOP classes, enough for the demo study and for pointing
/// DCMTK's storescu at the demo SCP with everyday files.
pub fn default_storage_sop_classes() -> Vec<String> {
    use dicom_dictionary_std::uids;
    [
        uids::CT_IMAGE_STORAGE,
        uids::ENHANCED_CT_IMAGE_STORAGE,
        uids::MR_IMAGE_STORAGE,
        uids::ENHANCED_MR_IMAGE_STORAGE,
        uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        uids::ULTRASOUND_IMAGE_STORAGE,
        uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
        uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
        uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
        uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
        uids::RT_IMAGE_STORAGE,
        uids::RT_STRUCTURE_SET_STORAGE,
        uids::RT_DOSE_STORAGE,
        uids::RT_PLAN_STORAGE,
        uids::BASIC_TEXT_SR_STORAGE,
        uids::ENHANCED_SR_STORAGE,
        uids::COMPREHENSIVE_SR_STORAGE,
        uids::ENCAPSULATED_PDF_STORAGE,
        uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
        uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect()
}

/// One object the SCP received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedObject {
    pub calling_ae_title: String,
    pub called_ae_title: String,
    pub pc_id: u8,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    /// Data set length in bytes.
    pub length: u64,
    /// Status the SCP answered with.
    pub status: u16,
    /// The data set bytes, in memory mode and under the memory cap.
    #[serde(skip)]
    pub dataset: Option<Vec<u8>>,
    /// The Part-10 file, in directory mode.
    pub path: Option<PathBuf>,
}

/// One association the SCP accepted, as it saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScpAssociation {
    pub peer: SocketAddr,
    pub calling_ae_title: String,
    pub called_ae_title: String,
    pub contexts: Vec<NegotiatedContext>,
    pub echoes: u32,
    pub stores: u32,
    /// "released", "aborted", or what went wrong.
    pub ended: String,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedObject>>,
    associations: Mutex<Vec<ScpAssociation>>,
    kept_bytes: AtomicU64,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// Poisoning only means another peer thread panicked; the lists are still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Options = ServerAssociationOptions<'static, AcceptAny, DefaultNegotiation>;

/// A running storage SCP. Dropping it stops accepting (see [`StorageScp::shutdown`]).
pub struct StorageScp {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl StorageScp {
    /// Binds 127.0.0.1:`config.port` and starts accepting associations.
    pub fn start(config: ScpConfig) -> Result<StorageScp, PeerError> {
        if let ScpStorage::Directory(dir) = &config.storage {
            std::fs::create_dir_all(dir)
                .map_err(|e| PeerError::io(format!("creating {}", dir.display()), e))?;
        }
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        super::ensure_loopback(bind)?;
        let listener =
            TcpListener::bind(bind).map_err(|e| PeerError::io(format!("binding {bind}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| PeerError::io("listener address", e))?;

        let mut options: Options = ServerAssociationOptions::new()
            .accept_any()
            .ae_title(config.ae_title.clone())
            .max_pdu_length(config.max_pdu_length)
            .read_timeout(config.idle_timeout)
            .write_timeout(config.idle_timeout)
            .with_abstract_syntax(VERIFICATION.to_string());
        for class in &config.sop_classes {
            options = options.with_abstract_syntax(class.clone());
        }
        for ts in &config.transfer_syntaxes {
            options = options.with_transfer_syntax(ts.clone());
        }

        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let ctx = Arc::new(AssocContext {
            options,
            config,
            shared: shared.clone(),
        });
        let stop2 = stop.clone();
        let accept_thread = std::thread::Builder::new()
            .name("dicomtap-scp-accept".into())
            .spawn(move || accept_loop(listener, stop2, ctx))
            .map_err(|e| PeerError::io("spawning the SCP thread", e))?;
        info!(%addr, "storage SCP listening");
        Ok(StorageScp {
            addr,
            stop,
            accept_thread: Some(accept_thread),
            shared,
        })
    }

    /// Where the SCP listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the SCP received so far, in order of arrival.
    pub fn received(&self) -> Vec<ReceivedObject> {
        lock(&self.shared.received).clone()
    }

    /// The associations that have ended so far (a released one is listed before its
    /// A-RELEASE-RP is sent).
    pub fn associations(&self) -> Vec<ScpAssociation> {
        lock(&self.shared.associations).clone()
    }

    /// Checks that each of `sent` arrived with exactly the same data set bytes. Returns the
    /// SOP Instance UIDs that did not (missing, different, or bytes not kept).
    pub fn mismatches(&self, sent: &[EncodedObject]) -> Vec<String> {
        let received = self.received();
        sent.iter()
            .filter(|obj| {
                !received.iter().any(|r| {
                    r.sop_instance_uid == obj.sop_instance_uid
                        && r.status == dimse::STATUS_SUCCESS
                        && received_bytes(r).is_some_and(|b| b == obj.dataset)
                })
            })
            .map(|obj| obj.sop_instance_uid.clone())
            .collect()
    }

    /// Stops accepting, then waits up to `drain` for open associations to end.
    pub fn shutdown(mut self, drain: Duration) {
        self.stop_accepting();
        let deadline = Instant::now() + drain;
        loop {
            let mut workers = lock(&self.shared.workers);
            workers.retain(|h| !h.is_finished());
            if workers.is_empty() || Instant::now() >= deadline {
                if !workers.is_empty() {
                    warn!(
                        open = workers.len(),
                        "SCP associations still open at shutdown"
                    );
                }
                break;
            }
            drop(workers);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_accepting(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept_thread.take() {
            let _ = h.join();
        }
    }
}

impl Drop for StorageScp {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

/// The data set bytes of a received object, from memory or from its file.
fn received_bytes(r: &ReceivedObject) -> Option<Vec<u8>> {
    if let Some(b) = &r.dataset {
        return Some(b.clone());
    }
    let path = r.path.as_ref()?;
    let file = std::fs::read(path).ok()?;
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(file.as_slice())
        .ok()?;
    // The data set follows preamble, magic and the meta group (its length + 12 bytes).
    let meta_len = obj.meta().information_group_length as usize + 12;
    file.get(132 + meta_len..).map(<[u8]>::to_vec)
}

struct AssocContext {
    options: Options,
    config: ScpConfig,
    shared: Arc<Shared>,
}

fn accept_loop(listener: TcpListener, stop: Arc<AtomicBool>, ctx: Arc<AssocContext>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "SCP accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let ctx2 = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("dicomtap-scp-assoc".into())
            .spawn(move || serve(stream, &ctx2));
        match spawned {
            Ok(h) => {
                let mut workers = lock(&ctx.shared.workers);
                workers.retain(|h| !h.is_finished());
                workers.push(h);
            }
            Err(e) => warn!(error = %e, "could not spawn an SCP association thread"),
        }
    }
}

/// A command whose data set is still arriving.
struct Pending {
    pc_id: u8,
    command: CommandSet,
    data: Vec<u8>,
    overflow: bool,
}

fn serve(stream: TcpStream, ctx: &AssocContext) {
    let peer = match stream.peer_addr() {
        Ok(p) => p,
        Err(_) => return,
    };
    // DIMSE is request/response over small PDUs: without TCP_NODELAY, Nagle and delayed
    // ACKs add ~40 ms to every response.
    let _ = stream.set_nodelay(true);
    let mut assoc = match ctx.options.establish(stream) {
        Ok(a) => a,
        Err(e) => {
            warn!(%peer, error = %e, "SCP: association not established");
            return;
        }
    };
    let contexts: Vec<NegotiatedContext> = assoc
        .presentation_contexts()
        .iter()
        .map(NegotiatedContext::from)
        .collect();
    let mut record = ScpAssociation {
        peer,
        calling_ae_title: assoc.peer_ae_title().trim().to_string(),
        called_ae_title: assoc.called_ae_title().trim().to_string(),
        contexts,
        echoes: 0,
        stores: 0,
        ended: String::new(),
    };
    debug!(%peer, calling = %record.calling_ae_title, "SCP association established");

    let mut command_buf: Vec<u8> = Vec::new();
    let mut pending: Option<Pending> = None;
    record.ended = loop {
        let pdu = match assoc.receive() {
            Ok(p) => p,
            Err(e) => break format!("receive failed: {e}"),
        };
        match pdu {
            Pdu::PData { data } => {
                let mut replies = Vec::new();
                let mut failure = None;
                for pdv in data {
                    match handle_pdv(pdv, &mut command_buf, &mut pending, ctx, &mut record) {
                        Ok(Some(reply)) => replies.push(reply),
                        Ok(None) => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = failure {
                    warn!(%peer, error = %e, "SCP: aborting association");
                    let _ = assoc.abort();
                    record.ended = format!("aborted by SCP: {e}");
                    lock(&ctx.shared.associations).push(record);
                    return;
                }
                let mut sent = Ok(());
                for reply in replies {
                    sent = assoc.send(&reply);
                    if sent.is_err() {
                        break;
                    }
                }
                if let Err(e) = sent {
                    break format!("send failed: {e}");
                }
            }
            Pdu::ReleaseRQ => {
                // Listed before the A-RELEASE-RP goes out, so a requestor that has seen
                // its release completed also sees the association in the list.
                record.ended = "released".into();
                debug!(%peer, "SCP association released");
                lock(&ctx.shared.associations).push(record);
                let _ = assoc.send(&Pdu::ReleaseRP);
                return;
            }
            Pdu::AbortRQ { .. } => break "aborted by peer".to_string(),
            other => {
                let what = other.short_description().to_string();
                let _ = assoc.abort();
                record.ended = format!("aborted by SCP: unexpected {what}");
                lock(&ctx.shared.associations).push(record);
                return;
            }
        }
    };
    debug!(%peer, ended = %record.ended, "SCP association ended");
    lock(&ctx.shared.associations).push(record);
}

/// Handles one PDV; returns the response PDU when a message is complete.
fn handle_pdv(
    pdv: PDataValue,
    command_buf: &mut Vec<u8>,
    pending: &mut Option<Pending>,
    ctx: &AssocContext,
    record: &mut ScpAssociation,
) -> Result<Option<Pdu>, PeerError> {
    match pdv.value_type {
        PDataValueType::Command => {
            if pending.is_some() {
                return Err(PeerError::Dimse(
                    "command fragment while a data set was expected".into(),
                ));
            }
            if command_buf.len() + pdv.data.len() > 64 * 1024 {
                return Err(PeerError::Dimse("command set larger than 64 KiB".into()));
            }
            command_buf.extend_from_slice(&pdv.data);
            if !pdv.is_last {
                return Ok(None);
            }
            let command = CommandSet::decode(command_buf)?;
            command_buf.clear();
            if command.has_dataset {
                *pending = Some(Pending {
                    pc_id: pdv.presentation_context_id,
                    command,
                    data: Vec::new(),
                    overflow: false,
                });
                return Ok(None);
            }
            let status = match command.command_field {
                dimse::C_ECHO_RQ => {
                    record.echoes += 1;
                    dimse::STATUS_SUCCESS
                }
                _ => dimse::STATUS_UNRECOGNIZED_OPERATION,
            };
            Ok(Some(super::command_pdu(
                pdv.presentation_context_id,
                &command.response(status),
            )?))
        }
        PDataValueType::Data => {
            let Some(p) = pending.as_mut() else {
                return Err(PeerError::Dimse("data fragment without a command".into()));
            };
            if p.pc_id != pdv.presentation_context_id {
                return Err(PeerError::Dimse(format!(
                    "data set on context {} for a command on context {}",
                    pdv.presentation_context_id, p.pc_id
                )));
            }
            if p.data.len() as u64 + pdv.data.len() as u64 > ctx.config.max_object_bytes {
                p.overflow = true;
                p.data = Vec::new();
            }
            if !p.overflow {
                p.data.extend_from_slice(&pdv.data);
            }
            if !pdv.is_last {
                return Ok(None);
            }
            let Some(p) = pending.take() else {
                return Ok(None);
            };
            let (pc_id, rsp) = if p.command.command_field == dimse::C_STORE_RQ {
                record.stores += 1;
                store(p, ctx, record)
            } else {
                (
                    p.pc_id,
                    p.command.response(dimse::STATUS_UNRECOGNIZED_OPERATION),
                )
            };
            Ok(Some(super::command_pdu(pc_id, &rsp)?))
        }
    }
}

/// Stores a completed C-STORE and returns the context and response to send.
fn store(p: Pending, ctx: &AssocContext, record: &ScpAssociation) -> (u8, CommandSet) {
    let pc = record.contexts.iter().find(|c| c.id == p.pc_id);
    let transfer_syntax = pc.map(|c| c.transfer_syntax.clone()).unwrap_or_default();
    let sop_class = p
        .command
        .affected_sop_class
        .clone()
        .map(|s| trim_uid(&s).to_string())
        .unwrap_or_default();
    let sop_instance = p
        .command
        .affected_sop_instance
        .clone()
        .map(|s| trim_uid(&s).to_string())
        .unwrap_or_default();
    if let Some(pc) = pc
        && pc.abstract_syntax != sop_class
    {
        warn!(context = %pc.abstract_syntax, command = %sop_class,
            "C-STORE SOP class differs from its presentation context");
    }
    let length = p.data.len() as u64;
    let mut path = None;
    let mut dataset = None;
    let status = if p.overflow {
        dimse::STATUS_OUT_OF_RESOURCES
    } else {
        match &ctx.config.storage {
            ScpStorage::Memory { max_total_bytes } => {
                let before = ctx.shared.kept_bytes.fetch_add(length, Ordering::SeqCst);
                if before + length <= *max_total_bytes {
                    dataset = Some(p.data);
                } else {
                    ctx.shared.kept_bytes.fetch_sub(length, Ordering::SeqCst);
                    debug!("SCP memory cap reached; keeping the list entry only");
                }
                dimse::STATUS_SUCCESS
            }
            ScpStorage::Directory(dir) => {
                let obj = EncodedObject {
                    sop_class_uid: sop_class.clone(),
                    sop_instance_uid: sop_instance.clone(),
                    transfer_syntax: transfer_syntax.clone(),
                    dataset: p.data,
                };
                let file = dir.join(format!("{}.dcm", file_stem(&sop_instance)));
                match obj
                    .to_part10(Some(&record.calling_ae_title))
                    .and_then(|bytes| {
                        std::fs::write(&file, bytes)
                            .map_err(|e| PeerError::io(file.display().to_string(), e))
                    }) {
                    Ok(()) => {
                        path = Some(file);
                        dimse::STATUS_SUCCESS
                    }
                    Err(e) => {
                        warn!(error = %e, "SCP could not store an object");
                        dimse::STATUS_OUT_OF_RESOURCES
                    }
                }
            }
        }
    };
    lock(&ctx.shared.received).push(ReceivedObject {
        calling_ae_title: record.calling_ae_title.clone(),
        called_ae_title: record.called_ae_title.clone(),
        pc_id: p.pc_id,
        sop_class_uid: sop_class,
        sop_instance_uid: sop_instance,
        transfer_syntax,
        length,
        status,
        dataset,
        path,
    });
    (p.pc_id, p.command.response(status))
}

/// A file name from a UID: UIDs are digits and dots, anything else (a hostile or broken
/// peer) is replaced so the name cannot leave the directory.
fn file_stem(uid: &str) -> String {
    let s: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "unnamed".into()
    } else {
        s
    }
}
