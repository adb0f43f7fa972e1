//! Streaming packet reader for pcap and pcapng, chosen by magic number rather than by file
//! name (pcapng files are often named `.pcap`).
//!
//! pcap-file 2.0 does the record framing with a fixed 8 MB buffer, so memory stays
//! constant whatever the file size and input can be a pipe (`tcpdump -U -w -`). Packet
//! records are decoded here rather than by pcap-file: its pcap packet validation rejects
//! `orig_len > snaplen` (common with `-s`), and its pcapng enhanced packet block ignores
//! `if_tsresol` and rejects odd options. Interface descriptions are tracked here too, one
//! link type and timestamp resolution per interface.

use std::fs::File;
use std::io::{Chain, Cursor, ErrorKind, Read};
use std::path::Path;

use pcap_file::PcapError;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgReader;

use super::error::CaptureError;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

type Input<R> = Chain<Cursor<Vec<u8>>, R>;

/// One captured packet. `data` borrows the reader's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// 1-based packet number (Wireshark's frame number).
    pub number: u64,
    /// Byte offset of the packet's record in the input.
    pub offset: u64,
    /// Capture time, microseconds since the UNIX epoch.
    pub ts_us: u64,
    /// LINKTYPE_* of the interface the packet was captured on.
    pub link_type: u32,
    /// Interface index (0 for pcap).
    pub interface: u32,
    /// Length of the packet on the wire; larger than `data.len()` when snapped.
    pub orig_len: u32,
    /// Bytes of this packet's direction a dicomtap recording left out on purpose just
    /// before this packet (`payload = headers`: the packet's comment says `omitted=N`);
    /// 0 for anything else.
    pub omitted_before: u64,
    /// Bytes of this packet's direction missing from a dicomtap recording just before
    /// this packet (and before any `omitted_before`): the recorder dropped them (its
    /// queue was full, or a write failed) and the comment says `lost=N`; 0 otherwise.
    pub lost_before: u64,
    /// The proxy's association number, when this is a dicomtap recording's packet (its
    /// comment says `assoc=N`): the analyzer numbers the association as the proxy did.
    pub recorded_assoc: Option<u64>,
    pub data: &'a [u8],
}

/// Which container the input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second is 10^n or 2^n; kept as the raw if_tsresol byte.
    tsresol: u8,
    tsoffset_s: i64,
}

enum Inner<R: Read> {
    Pcap {
        reader: PcapReader<Input<R>>,
        link_type: u32,
        nanos: bool,
    },
    PcapNg {
        reader: PcapNgReader<Input<R>>,
        big_endian: bool,
        interfaces: Vec<Interface>,
        last_ts_us: u64,
        /// The current packet's bytes: copied out of pcap-file's buffer because a block
        /// borrowed from it cannot be returned from inside the block-skipping loop.
        scratch: Vec<u8>,
    },
}

/// Streams packets out of a pcap or pcapng input.
pub struct PacketReader<R: Read> {
    name: String,
    inner: Inner<R>,
    /// Offset of the next record.
    offset: u64,
    packets: u64,
    done: bool,
}

impl PacketReader<File> {
    /// Open a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| CaptureError::Open {
            file: name.clone(),
            source,
        })?;
        Self::new(name, file)
    }
}

impl<R: Read> PacketReader<R> {
    /// Read a capture from any reader (a pipe, stdin); `name` is used in errors.
    pub fn new(name: impl Into<String>, mut input: R) -> Result<Self, CaptureError> {
        let name = name.into();
        let mut head = vec![0u8; 4];
        read_head(&mut input, &mut head, &name)?;
        let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let inner = match magic_le {
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => {
                let reader = PcapReader::new(Cursor::new(head).chain(input))
                    .map_err(|e| header_error(&name, e))?;
                let header = reader.header();
                Inner::Pcap {
                    link_type: u32::from(header.datalink),
                    nanos: header.ts_resolution == pcap_file::TsResolution::NanoSecond,
                    reader,
                }
            }
            PCAPNG_SHB => {
                // Read the section header's length and byte-order magic ourselves, so the
                // offsets of later records are known.
                head.resize(12, 0);
                read_head(&mut input, &mut head[4..], &name)?;
                let big_endian = match &head[8..12] {
                    [0x1A, 0x2B, 0x3C, 0x4D] => true,
                    [0x4D, 0x3C, 0x2B, 0x1A] => false,
                    other => {
                        return Err(CaptureError::Header {
                            file: name,
                            reason: format!("bad pcapng byte-order magic {other:02x?}"),
                        });
                    }
                };
                let len = u32_at(&head, 4, big_endian);
                let reader = PcapNgReader::new(Cursor::new(head).chain(input))
                    .map_err(|e| header_error(&name, e))?;
                return Ok(PacketReader {
                    name,
                    inner: Inner::PcapNg {
                        reader,
                        big_endian,
                        interfaces: Vec::new(),
                        last_ts_us: 0,
                        scratch: Vec::new(),
                    },
                    offset: u64::from(len),
                    packets: 0,
                    done: false,
                });
            }
            _ => {
                return Err(CaptureError::UnknownFormat {
                    file: name,
                    magic: head,
                });
            }
        };
        Ok(PacketReader {
            name,
            inner,
            offset: 24,
            packets: 0,
            done: false,
        })
    }

    /// The input's name as used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> CaptureFormat {
        match self.inner {
            Inner::Pcap { .. } => CaptureFormat::Pcap,
            Inner::PcapNg { .. } => CaptureFormat::PcapNg,
        }
    }

    /// Packets returned so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// The next packet, `Ok(None)` at the end of the input. After an error the reader
    /// returns `Ok(None)`: framing is lost, nothing after the bad record can be trusted.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let number = self.packets + 1;
        let offset = self.offset;
        match &mut self.inner {
            Inner::Pcap {
                reader,
                link_type,
                nanos,
            } => {
                let raw = match reader.next_raw_packet() {
                    None => {
                        self.done = true;
                        return Ok(None);
                    }
                    Some(Err(e)) => {
                        self.done = true;
                        return Err(record_error(&self.name, number, offset, e));
                    }
                    Some(Ok(raw)) => raw,
                };
                let data: &[u8] = match raw.data {
                    std::borrow::Cow::Borrowed(d) => d,
                    // pcap-file always borrows; an owned copy cannot outlive this call.
                    std::borrow::Cow::Owned(_) => {
                        self.done = true;
                        return Err(CaptureError::Record {
                            file: self.name.clone(),
                            packet: number,
                            offset,
                            reason: "internal: unexpected owned packet data".into(),
                        });
                    }
                };
                self.offset += 16 + u64::from(raw.incl_len);
                self.packets = number;
                let frac = if *nanos {
                    u64::from(raw.ts_frac) / 1000
                } else {
                    u64::from(raw.ts_frac)
                };
                Ok(Some(Packet {
                    number,
                    offset,
                    ts_us: u64::from(raw.ts_sec) * 1_000_000 + frac,
                    link_type: *link_type,
                    interface: 0,
                    orig_len: raw.orig_len,
                    omitted_before: 0,
                    lost_before: 0,
                    recorded_assoc: None,
                    data,
                }))
            }
            Inner::PcapNg {
                reader,
                big_endian,
                interfaces,
                last_ts_us,
                scratch,
            } => loop {
                let block_offset = self.offset;
                let raw = match reader.next_raw_block() {
                    None => {
                        self.done = true;
                        return Ok(None);
                    }
                    Some(Err(e)) => {
                        self.done = true;
                        return Err(record_error(&self.name, number, block_offset, e));
                    }
                    Some(Ok(raw)) => raw,
                };
                self.offset += u64::from(raw.initial_len);
                let body: &[u8] = match raw.body {
                    std::borrow::Cow::Borrowed(b) => b,
                    std::borrow::Cow::Owned(_) => continue,
                };
                let be = *big_endian;
                let bad = |reason: &str| CaptureError::Record {
                    file: self.name.clone(),
                    packet: number,
                    offset: block_offset,
                    reason: reason.to_string(),
                };
                let mut note = RecorderNote::default();
                let (iface, ts_raw, orig_len, data) = match raw.type_ {
                    PCAPNG_SHB => {
                        *big_endian = body.get(0..4) == Some(&[0x1A, 0x2B, 0x3C, 0x4D][..]);
                        interfaces.clear();
                        continue;
                    }
                    PCAPNG_IDB => {
                        interfaces.push(parse_idb(body, be).ok_or_else(|| {
                            self.done = true;
                            bad("malformed interface description block")
                        })?);
                        continue;
                    }
                    PCAPNG_EPB => {
                        if body.len() < 20 {
                            self.done = true;
                            return Err(bad("enhanced packet block shorter than 20 bytes"));
                        }
                        let iface = u32_at(body, 0, be);
                        let ts =
                            (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
                        let cap = u32_at(body, 12, be) as usize;
                        let orig = u32_at(body, 16, be);
                        let data = body.get(20..20usize.saturating_add(cap)).ok_or_else(|| {
                            self.done = true;
                            bad("enhanced packet block captured length exceeds the block")
                        })?;
                        let options = body.get(20 + cap.next_multiple_of(4)..).unwrap_or(&[]);
                        note = recorder_note(options, be);
                        (iface, Some(ts), orig, data)
                    }
                    PCAPNG_PB => {
                        if body.len() < 20 {
                            self.done = true;
                            return Err(bad("packet block shorter than 20 bytes"));
                        }
                        let iface = u32::from(u16_at(body, 0, be));
                        let ts =
                            (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
                        let cap = u32_at(body, 12, be) as usize;
                        let orig = u32_at(body, 16, be);
                        let data = body.get(20..20usize.saturating_add(cap)).ok_or_else(|| {
                            self.done = true;
                            bad("packet block captured length exceeds the block")
                        })?;
                        (iface, Some(ts), orig, data)
                    }
                    PCAPNG_SPB => {
                        if body.len() < 4 {
                            self.done = true;
                            return Err(bad("simple packet block shorter than 4 bytes"));
                        }
                        let orig = u32_at(body, 0, be);
                        let rest = &body[4..];
                        let cap = rest.len().min(orig as usize);
                        (0, None, orig, &rest[..cap])
                    }
                    // Statistics, name resolution, journal, custom, decryption secrets...
                    _ => continue,
                };
                self.packets = number;
                let Some(info) = interfaces.get(iface as usize).copied() else {
                    self.done = true;
                    return Err(bad(&format!(
                        "packet refers to interface {iface}, which no interface description \
                         block declared"
                    )));
                };
                let ts_us = match ts_raw {
                    Some(raw) => pcapng_ts_us(raw, info.tsresol, info.tsoffset_s),
                    // Simple packet blocks carry no timestamp.
                    None => *last_ts_us,
                };
                *last_ts_us = ts_us;
                scratch.clear();
                scratch.extend_from_slice(data);
                return Ok(Some(Packet {
                    number,
                    offset: block_offset,
                    ts_us,
                    link_type: info.link_type,
                    interface: iface,
                    orig_len,
                    omitted_before: note.omitted,
                    lost_before: note.lost,
                    recorded_assoc: note.assoc,
                    data: scratch,
                }));
            },
        }
    }
}

/// Prefix of the packet comments a dicomtap recording writes.
const RECORDER_COMMENT: &[u8] = b"dicomtap assoc=";

/// What a dicomtap recorder's packet comment says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RecorderNote {
    /// `assoc=N`: the proxy's association number.
    assoc: Option<u64>,
    /// `omitted=N`: bytes left out of the recording on purpose just before the packet.
    omitted: u64,
    /// `lost=N`: bytes missing from the recording before those (dropped by the recorder).
    lost: u64,
}

/// The [`RecorderNote`] among pcapng `options` (all zero for other comments).
fn recorder_note(mut options: &[u8], be: bool) -> RecorderNote {
    // Every option is at least 4 bytes, so this ends.
    while options.len() >= 4 {
        let code = u16_at(options, 0, be);
        let len = usize::from(u16_at(options, 2, be));
        if code == 0 {
            break;
        }
        let Some(value) = options.get(4..4 + len) else {
            break;
        };
        if code == 1 && value.starts_with(RECORDER_COMMENT) {
            let text = String::from_utf8_lossy(value);
            let field = |name: &str| {
                text.split(' ')
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|n| n.parse::<u64>().ok())
            };
            return RecorderNote {
                assoc: field("assoc="),
                omitted: field("omitted=").unwrap_or(0),
                lost: field("lost=").unwrap_or(0),
            };
        }
        options = options.get(4 + len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    RecorderNote::default()
}

#[cfg(test)]
fn recorder_omitted(options: &[u8], be: bool) -> u64 {
    recorder_note(options, be).omitted
}

fn read_head<R: Read>(input: &mut R, buf: &mut [u8], name: &str) -> Result<(), CaptureError> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == ErrorKind::UnexpectedEof {
            CaptureError::TooShort { file: name.into() }
        } else {
            CaptureError::Io {
                file: name.into(),
                packet: 0,
                offset: 0,
                source: e,
            }
        }
    })
}

fn header_error(name: &str, e: PcapError) -> CaptureError {
    match e {
        PcapError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
            CaptureError::TooShort { file: name.into() }
        }
        PcapError::IoError(source) => CaptureError::Io {
            file: name.into(),
            packet: 0,
            offset: 0,
            source,
        },
        other => CaptureError::Header {
            file: name.into(),
            reason: other.to_string(),
        },
    }
}

fn record_error(name: &str, packet: u64, offset: u64, e: PcapError) -> CaptureError {
    match e {
        PcapError::IoError(io) if io.kind() == ErrorKind::UnexpectedEof => {
            CaptureError::Truncated {
                file: name.into(),
                packet,
                offset,
            }
        }
        PcapError::IoError(source) => CaptureError::Io {
            file: name.into(),
            packet,
            offset,
            source,
        },
        other => CaptureError::Record {
            file: name.into(),
            packet,
            offset,
            reason: other.to_string(),
        },
    }
}

fn u16_at(b: &[u8], at: usize, be: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

/// Link type, if_tsresol (option 9) and if_tsoffset (option 14) of an interface
/// description block body; other options are skipped.
fn parse_idb(body: &[u8], be: bool) -> Option<Interface> {
    if body.len() < 8 {
        return None;
    }
    let mut iface = Interface {
        link_type: u32::from(u16_at(body, 0, be)),
        tsresol: 6,
        tsoffset_s: 0,
    };
    let mut opts = &body[8..];
    while opts.len() >= 4 {
        let code = u16_at(opts, 0, be);
        let len = usize::from(u16_at(opts, 2, be));
        if code == 0 {
            break;
        }
        let value = opts.get(4..4 + len)?;
        match (code, len) {
            (9, 1) => iface.tsresol = value[0],
            (14, 8) => {
                let v: [u8; 8] = value.try_into().ok()?;
                iface.tsoffset_s = if be {
                    i64::from_be_bytes(v)
                } else {
                    i64::from_le_bytes(v)
                };
            }
            _ => {}
        }
        let padded = 4 + len.div_ceil(4) * 4;
        opts = opts.get(padded..).unwrap_or_default();
    }
    Some(iface)
}

/// Convert a pcapng timestamp in `if_tsresol` units (10^-n s, or 2^-n s when the top bit
/// is set) plus `if_tsoffset` seconds to microseconds since the epoch; saturating.
pub(crate) fn pcapng_ts_us(raw: u64, tsresol: u8, offset_s: i64) -> u64 {
    let n = u32::from(tsresol & 0x7F);
    let raw = u128::from(raw);
    let us: u128 = if tsresol & 0x80 != 0 {
        match 1u128.checked_shl(n) {
            Some(div) if n < 128 => raw * 1_000_000 / div,
            _ => 0,
        }
    } else if n <= 6 {
        raw * 10u128.pow(6 - n)
    } else {
        match 10u128.checked_pow(n - 6) {
            Some(div) => raw / div,
            None => 0,
        }
    };
    let us = i128::try_from(us).unwrap_or(i128::MAX) + i128::from(offset_s) * 1_000_000;
    u64::try_from(us.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::{pcapng_ts_us, recorder_omitted};

    fn option(code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = code.to_le_bytes().to_vec();
        o.extend_from_slice(&(value.len() as u16).to_le_bytes());
        o.extend_from_slice(value);
        while o.len() % 4 != 0 {
            o.push(0);
        }
        o
    }

    #[test]
    fn omitted_bytes_are_read_from_the_recorders_comment_only() {
        let mut opts = option(2, b"flags");
        opts.extend(option(1, b"dicomtap assoc=3 omitted=12345"));
        opts.extend([0, 0, 0, 0]);
        assert_eq!(recorder_omitted(&opts, false), 12345);
        let note = super::recorder_note(&opts, false);
        assert_eq!((note.assoc, note.omitted, note.lost), (Some(3), 12345, 0));
        let lost = super::recorder_note(&option(1, b"dicomtap assoc=4 omitted=7 lost=99"), false);
        assert_eq!((lost.assoc, lost.omitted, lost.lost), (Some(4), 7, 99));
        assert_eq!(
            super::recorder_note(&option(1, b"note lost=5"), false).lost,
            0
        );
        assert_eq!(recorder_omitted(&option(1, b"dicomtap assoc=3"), false), 0);
        // Someone else's comment says nothing about the recording.
        assert_eq!(recorder_omitted(&option(1, b"note omitted=5"), false), 0);
        // Truncated or garbled options end the scan without a panic.
        assert_eq!(recorder_omitted(&[1, 0, 200, 0, b'd'], false), 0);
        assert_eq!(recorder_omitted(&[], false), 0);
    }

    #[test]
    fn tsresol_units() {
        assert_eq!(pcapng_ts_us(1_500_000, 6, 0), 1_500_000);
        assert_eq!(pcapng_ts_us(1_500_000_000, 9, 0), 1_500_000);
        assert_eq!(pcapng_ts_us(15, 1, 0), 1_500_000);
        assert_eq!(pcapng_ts_us(3 << 20, 0x80 | 20, 0), 3_000_000);
        assert_eq!(pcapng_ts_us(1, 6, 10), 10_000_001);
        assert_eq!(pcapng_ts_us(u64::MAX, 0x7F, 0), 0);
    }
}
