//! Errors of capture input. Each names the input and where in it things went wrong, so a
//! user can find the spot with a hex editor or `tshark -r FILE -c N`.

use std::io;

/// Reading a capture failed. `file` is the path (or `-` / a caller-chosen name for
/// streams); `packet` is the 1-based number the packet being read would have had (the
/// frame number Wireshark shows); `offset` is the byte offset of its record.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: cannot open: {source}")]
    Open {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: not a pcap or pcapng capture ({})", describe_magic(magic))]
    UnknownFormat { file: String, magic: Vec<u8> },
    #[error("{file}: too short to be a capture (ends inside the file header)")]
    TooShort { file: String },
    #[error("{file}: invalid file header: {reason}")]
    Header { file: String, reason: String },
    #[error(
        "{file}: packet {packet} (record at byte offset {offset}) is truncated: the capture \
         ends inside it, or the record is larger than the 8 MB reader buffer"
    )]
    Truncated {
        file: String,
        packet: u64,
        offset: u64,
    },
    #[error("{file}: packet {packet} (record at byte offset {offset}): {reason}")]
    Record {
        file: String,
        packet: u64,
        offset: u64,
        reason: String,
    },
    #[error("{file}: read error at packet {packet} (byte offset {offset}): {source}")]
    Io {
        file: String,
        packet: u64,
        offset: u64,
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// True when the capture simply ends mid-record (a capture copied while being written,
    /// tcpdump killed): everything before it was read and delivered.
    pub fn is_truncation(&self) -> bool {
        matches!(self, CaptureError::Truncated { .. })
    }
}

/// The first bytes of an input that is not a capture, in hex, with a hint when it is one
/// of dicomtap's own event logs.
fn describe_magic(magic: &[u8]) -> String {
    let hex: Vec<String> = magic.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = format!("first bytes {}", hex.join(" "));
    if magic.starts_with(b"{\"") {
        out.push_str(
            "; this looks like a JSON-lines event log: the proxy writes one beside each \
             capture (analyze the .pcapng next to it; a recording made with --payload none \
             has only the event log, which holds the associations, messages and findings \
             already decoded)",
        );
    }
    out
}
