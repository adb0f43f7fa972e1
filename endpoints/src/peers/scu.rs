//! An embedded storage SCU: C-ECHO, and C-STORE of in-memory objects, each on a
//! presentation context negotiated for its SOP class and its own transfer syntax (the
//! bytes are sent as they are, never transcoded, so the receiver can be checked byte for
//! byte).
//!
//! The functions block (dicom-ul 0.10's association API is synchronous); call them from a
//! std thread or `tokio::task::spawn_blocking`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dicom_ul::association::ClientAssociation;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValueType, Pdu};
use serde::Serialize;
use std::io::Write;
use std::net::TcpStream;
use tracing::{debug, warn};

use super::dimse::{self, CommandSet};
use super::{EncodedObject, NegotiatedContext, PeerError, VERIFICATION, trim_uid};

/// SCU settings.
#[derive(Debug, Clone)]
pub struct ScuOptions {
    pub calling_ae_title: String,
    pub called_ae_title: String,
    /// Maximum PDU length the SCU announces.
    pub max_pdu_length: u32,
    /// Connect, read and write timeout.
    pub timeout: Duration,
}

impl Default for ScuOptions {
    fn default() -> Self {
        ScuOptions {
            calling_ae_title: "DEMO-SCU".into(),
            called_ae_title: "DEMO-SCP".into(),
            max_pdu_length: 16_384,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Result of a C-ECHO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EchoOutcome {
    pub contexts: Vec<NegotiatedContext>,
    pub status: u16,
    pub latency_us: u64,
}

/// Result of one C-STORE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreResult {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    pub bytes: u64,
    /// The presentation context it went on; `None` if none was accepted for it.
    pub pc_id: Option<u8>,
    /// The status the SCP answered; `None` if no response arrived.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// From the end of the request to the response.
    pub latency_us: Option<u64>,
}

impl StoreResult {
    /// Stored with status Success.
    pub fn is_success(&self) -> bool {
        self.status == Some(dimse::STATUS_SUCCESS)
    }
}

/// Result of a C-STORE association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreOutcome {
    pub contexts: Vec<NegotiatedContext>,
    pub results: Vec<StoreResult>,
    /// The association ended with A-RELEASE (rather than an abort or an error).
    pub released: bool,
}

fn establish(
    addr: SocketAddr,
    opts: &ScuOptions,
    contexts: &[(String, String)],
) -> Result<ClientAssociation<TcpStream>, PeerError> {
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(opts.calling_ae_title.clone())
        .called_ae_title(opts.called_ae_title.clone())
        .max_pdu_length(opts.max_pdu_length)
        .connection_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .write_timeout(opts.timeout);
    for (abstract_syntax, ts) in contexts {
        options = options.with_presentation_context(abstract_syntax.clone(), vec![ts.clone()]);
    }
    let mut assoc = options
        .establish(addr)
        .map_err(|e| PeerError::association(addr, e))?;
    // Small request/response PDUs: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms
    // per message.
    let _ = assoc.inner_stream().set_nodelay(true);
    Ok(assoc)
}

/// Sends a command set (one PDV, command sets are small) on `pc_id`.
fn send_command(
    assoc: &mut ClientAssociation<TcpStream>,
    pc_id: u8,
    command: &CommandSet,
    addr: SocketAddr,
) -> Result<(), PeerError> {
    assoc
        .send(&super::command_pdu(pc_id, command)?)
        .map_err(|e| PeerError::association(addr, e))
}

/// Reads PDUs until a complete command set arrives (responses carry no data set here).
fn receive_command(
    assoc: &mut ClientAssociation<TcpStream>,
    addr: SocketAddr,
) -> Result<CommandSet, PeerError> {
    let mut buf = Vec::new();
    loop {
        match assoc
            .receive()
            .map_err(|e| PeerError::association(addr, e))?
        {
            Pdu::PData { data } => {
                for pdv in data {
                    if pdv.value_type != PDataValueType::Command {
                        continue;
                    }
                    if buf.len() + pdv.data.len() > 64 * 1024 {
                        return Err(PeerError::Dimse("response command set over 64 KiB".into()));
                    }
                    buf.extend_from_slice(&pdv.data);
                    if pdv.is_last {
                        return CommandSet::decode(&buf);
                    }
                }
            }
            other => {
                return Err(PeerError::UnexpectedPdu(
                    other.short_description().to_string(),
                ));
            }
        }
    }
}

/// Opens an association for Verification, sends one C-ECHO and releases.
pub fn echo(addr: SocketAddr, opts: &ScuOptions) -> Result<EchoOutcome, PeerError> {
    let mut assoc = establish(
        addr,
        opts,
        &[(VERIFICATION.to_string(), super::IMPLICIT_VR_LE.to_string())],
    )?;
    let contexts: Vec<NegotiatedContext> = assoc
        .presentation_contexts()
        .iter()
        .map(NegotiatedContext::from)
        .collect();
    let pc = contexts
        .iter()
        .find(|c| c.accepted && c.abstract_syntax == VERIFICATION)
        .ok_or_else(|| PeerError::NoContext("Verification".into()))?;
    let started = Instant::now();
    send_command(&mut assoc, pc.id, &CommandSet::echo_rq(1), addr)?;
    let rsp = receive_command(&mut assoc, addr)?;
    let latency_us = started.elapsed().as_micros() as u64;
    if rsp.command_field != dimse::C_ECHO_RSP || rsp.responded_to != Some(1) {
        let _ = assoc.abort();
        return Err(PeerError::Dimse(format!(
            "expected C-ECHO-RSP to message 1, got command 0x{:04X} to {:?}",
            rsp.command_field, rsp.responded_to
        )));
    }
    let status = rsp
        .status
        .ok_or_else(|| PeerError::Dimse("C-ECHO-RSP without Status".into()))?;
    assoc
        .release()
        .map_err(|e| PeerError::association(addr, e))?;
    Ok(EchoOutcome {
        contexts,
        status,
        latency_us,
    })
}

/// Opens one association proposing a context per (SOP class, transfer syntax) of
/// `objects`, sends each object with C-STORE, and releases. A failure of one object is
/// reported in its [`StoreResult`]; only failing to associate at all is an error.
pub fn store(
    addr: SocketAddr,
    opts: &ScuOptions,
    objects: &[EncodedObject],
) -> Result<StoreOutcome, PeerError> {
    let mut proposed: Vec<(String, String)> = Vec::new();
    for obj in objects {
        let key = (
            trim_uid(&obj.sop_class_uid).to_string(),
            trim_uid(&obj.transfer_syntax).to_string(),
        );
        if !proposed.contains(&key) {
            proposed.push(key);
        }
    }
    // PS3.8 9.3.2.2: context IDs are odd numbers 1..=255, so at most 128 contexts.
    if proposed.len() > 128 {
        return Err(PeerError::Dimse(format!(
            "{} SOP class / transfer syntax pairs need more than 128 presentation contexts",
            proposed.len()
        )));
    }
    let mut assoc = establish(addr, opts, &proposed)?;
    let contexts: Vec<NegotiatedContext> = assoc
        .presentation_contexts()
        .iter()
        .map(NegotiatedContext::from)
        .collect();

    let mut results = Vec::with_capacity(objects.len());
    let mut broken: Option<String> = None;
    for (i, obj) in objects.iter().enumerate() {
        let message_id = (i % usize::from(u16::MAX)) as u16 + 1;
        let mut result = StoreResult {
            sop_class_uid: obj.sop_class_uid.clone(),
            sop_instance_uid: obj.sop_instance_uid.clone(),
            transfer_syntax: obj.transfer_syntax.clone(),
            bytes: obj.dataset.len() as u64,
            pc_id: None,
            status: None,
            error: None,
            latency_us: None,
        };
        if let Some(why) = &broken {
            result.error = Some(format!("not sent: {why}"));
            results.push(result);
            continue;
        }
        let Some(pc) = contexts.iter().find(|c| {
            c.accepted
                && c.abstract_syntax == trim_uid(&obj.sop_class_uid)
                && c.transfer_syntax == trim_uid(&obj.transfer_syntax)
        }) else {
            result.error = Some("no accepted presentation context".into());
            results.push(result);
            continue;
        };
        result.pc_id = Some(pc.id);
        match store_one(&mut assoc, pc.id, message_id, obj, addr) {
            Ok((status, latency_us)) => {
                result.status = Some(status);
                result.latency_us = Some(latency_us);
                debug!(sop_instance = %obj.sop_instance_uid, status, "C-STORE done");
            }
            Err(e) => {
                warn!(sop_instance = %obj.sop_instance_uid, error = %e, "C-STORE failed");
                result.error = Some(e.to_string());
                broken = Some(e.to_string());
            }
        }
        results.push(result);
    }
    let released = if broken.is_some() {
        let _ = assoc.abort();
        false
    } else {
        assoc
            .release()
            .map_err(|e| PeerError::association(addr, e))?;
        true
    };
    Ok(StoreOutcome {
        contexts,
        results,
        released,
    })
}

fn store_one(
    assoc: &mut ClientAssociation<TcpStream>,
    pc_id: u8,
    message_id: u16,
    obj: &EncodedObject,
    addr: SocketAddr,
) -> Result<(u16, u64), PeerError> {
    let rq = CommandSet::store_rq(
        message_id,
        trim_uid(&obj.sop_class_uid),
        trim_uid(&obj.sop_instance_uid),
    );
    send_command(assoc, pc_id, &rq, addr)?;
    let mut writer = assoc.send_pdata(pc_id);
    writer
        .write_all(&obj.dataset)
        .map_err(|e| PeerError::io(format!("sending a data set to {addr}"), e))?;
    writer
        .finish()
        .map_err(|e| PeerError::io(format!("sending a data set to {addr}"), e))?;
    let started = Instant::now();
    let rsp = receive_command(assoc, addr)?;
    let latency_us = started.elapsed().as_micros() as u64;
    if rsp.command_field != dimse::C_STORE_RSP || rsp.responded_to != Some(message_id) {
        return Err(PeerError::Dimse(format!(
            "expected C-STORE-RSP to message {message_id}, got command 0x{:04X} to {:?}",
            rsp.command_field, rsp.responded_to
        )));
    }
    let status = rsp
        .status
        .ok_or_else(|| PeerError::Dimse("C-STORE-RSP without Status".into()))?;
    Ok((status, latency_us))
}
