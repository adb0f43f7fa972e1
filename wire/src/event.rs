//! The typed events the engine emits. Their serde form is the stable JSON of the event
//! log and of `dicomtap pdu --json`; fields are only ever added.

use serde::Serialize;

use crate::assoc::{Abort, AssociateAccept, AssociateReject, AssociateRequest};
use crate::dimse::Command;
use crate::finding::Finding;
use crate::peek::DatasetPeek;

/// Which peer sent the bytes: the association requestor (the TCP client that sends the
/// A-ASSOCIATE-RQ) or the acceptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Requestor,
    Acceptor,
}

impl Side {
    /// The other peer.
    pub fn peer(self) -> Side {
        match self {
            Side::Requestor => Side::Acceptor,
            Side::Acceptor => Side::Requestor,
        }
    }

    /// Index for per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Side::Requestor => 0,
            Side::Acceptor => 1,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Requestor => "requestor",
            Side::Acceptor => "acceptor",
        })
    }
}

/// One thing the engine understood, with when it was seen, who sent it and where in that
/// direction's byte stream it starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Capture or arrival time of the chunk that completed this event, microseconds since
    /// the UNIX epoch.
    pub ts_us: u64,
    pub from: Side,
    /// Offset of the PDU (or element) in the sender's byte stream.
    pub offset: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    AssociateRq(AssociateRequest),
    AssociateAc(AssociateAccept),
    AssociateRj(AssociateReject),
    ReleaseRq,
    ReleaseRp,
    Abort(Abort),
    /// One P-DATA-TF PDU: its length and the PDV items in it.
    PData(PDataSummary),
    /// A complete DIMSE command set, reassembled from its fragments.
    Command(CommandEvent),
    /// The bounded peek at the start of a data set.
    DatasetPeek(DatasetPeekEvent),
    /// The last fragment of a data set arrived.
    DatasetEnd(DatasetEndEvent),
    /// Data set bytes, only when [`crate::EngineConfig::emit_data`] is set (object export).
    /// Never serialized into logs.
    #[serde(skip)]
    DataFragment(DataFragment),
    /// A PDU whose type is not one of the seven of PS3.8; its bytes were skipped.
    UnknownPdu {
        pdu_type: u8,
        length: u32,
    },
    /// Bytes of this direction were never seen (capture loss); decoding resumes at the next
    /// PDU boundary found.
    Gap {
        missing: u64,
    },
    /// Bytes of this direction a recording left out on purpose (`payload = headers`):
    /// data set bytes past what was kept. Not loss; decoding goes on after them.
    Omitted {
        bytes: u64,
    },
    /// After a gap or garbage, decoding found a PDU boundary again after skipping bytes.
    Resync {
        skipped: u64,
    },
    /// The TCP stream of this direction ended.
    StreamEnd {
        how: crate::engine::StreamEnd,
    },
    /// An oddity or violation; decoding goes on.
    Finding(Finding),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PDataSummary {
    pub pdu_length: u32,
    pub pdvs: Vec<PdvInfo>,
}

/// A PDV item header (PS3.8 9.3.5.1 and Annex E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PdvInfo {
    pub pc_id: u8,
    /// Length of the fragment (item length minus the context ID and control header bytes).
    pub length: u32,
    pub command: bool,
    pub last: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandEvent {
    pub pc_id: u8,
    /// Abstract syntax of the presentation context, when the negotiation was seen.
    pub abstract_syntax: Option<String>,
    #[serde(flatten)]
    pub command: Command,
    /// For a response: microseconds since the request it answers was seen.
    pub latency_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetPeekEvent {
    pub pc_id: u8,
    /// Transfer syntax the data set was decoded with (the accepted one of the context).
    pub transfer_syntax: Option<String>,
    /// Message ID of the command this data set belongs to.
    pub message_id: Option<u16>,
    #[serde(flatten)]
    pub peek: DatasetPeek,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetEndEvent {
    pub pc_id: u8,
    pub message_id: Option<u16>,
    /// Total bytes of the data set.
    pub length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFragment {
    pub pc_id: u8,
    pub bytes: Vec<u8>,
    pub last: bool,
}
