//! Link, network and transport header decoding: from a captured frame to a TCP segment.
//!
//! Lenient on purpose: checksums are not verified (offloading makes them wrong in most
//! captures taken on the sending host) and an IP total length of 0 (TSO) means "whatever
//! was captured". Everything that is not TCP over IPv4/IPv6 is reported as a [`Skip`]
//! so the caller can count it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Link-layer header types (LINKTYPE_* values from pcap/pcapng) this module decodes.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II / 802.3, with optional 802.1Q / 802.1ad tags.
    pub const ETHERNET: u32 = 1;
    /// Raw IP as DLT_RAW is numbered on most BSDs.
    pub const RAW_BSD: u32 = 12;
    /// Raw IP as DLT_RAW is numbered on OpenBSD.
    pub const RAW_OPENBSD: u32 = 14;
    /// Raw IP, the portable LINKTYPE_RAW.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`tcpdump -i any`).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// TCP flag bits as they appear in the header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// One decoded TCP segment; `payload` borrows the captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    /// Flags byte (see [`tcp_flags`]).
    pub flags: u8,
    /// The captured payload bytes; may be shorter than `wire_len` when the capture used a
    /// snap length.
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP header (or what was captured when the IP
    /// header does not say).
    pub wire_len: u32,
}

impl TcpSegment<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Why a frame did not yield a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The link type is not one we decode.
    UnsupportedLink(u32),
    /// Not IPv4/IPv6 (ARP, LLDP, STP, ...).
    NotIp,
    /// IP but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// An IP fragment: reassembly of IP fragments is not supported.
    Fragment,
    /// A header is shorter than it claims or has an impossible field.
    Malformed(&'static str),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// Stacked VLAN tags beyond this are treated as malformed (guards against loops on junk).
pub const MAX_VLAN_TAGS: usize = 8;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decode a frame of link type `link` (the low 16 bits of the pcap link type field; the
/// upper bits carry FCS information that IP length trimming makes irrelevant).
pub fn decode(link: u32, frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    match link & 0xFFFF {
        linktype::ETHERNET => ethernet(frame),
        linktype::LINUX_SLL => {
            let proto = be16(frame, 14).ok_or(Skip::Malformed("short SLL header"))?;
            by_ethertype(proto, frame.get(16..).unwrap_or_default())
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(frame, 0).ok_or(Skip::Malformed("short SLL2 header"))?;
            by_ethertype(
                proto,
                frame
                    .get(20..)
                    .ok_or(Skip::Malformed("short SLL2 header"))?,
            )
        }
        linktype::NULL | linktype::LOOP => {
            let af = frame
                .get(0..4)
                .ok_or(Skip::Malformed("short loopback header"))?;
            let af: [u8; 4] = af
                .try_into()
                .map_err(|_| Skip::Malformed("short loopback header"))?;
            // The family is in the capturing host's byte order for NULL and big-endian
            // for LOOP, but files move between hosts: accept either order.
            let le = u32::from_le_bytes(af);
            let be = u32::from_be_bytes(af);
            let body = &frame[4..];
            if le == 2 || be == 2 {
                ipv4(body)
            } else if [24, 28, 30].contains(&le) || [24, 28, 30].contains(&be) {
                ipv6(body)
            } else {
                Err(Skip::NotIp)
            }
        }
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => raw_ip(frame),
        linktype::IPV4 => ipv4(frame),
        linktype::IPV6 => ipv6(frame),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

fn raw_ip(frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => ipv4(frame),
        Some(6) => ipv6(frame),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Malformed("empty frame")),
    }
}

fn ethernet(frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    let mut ethertype = be16(frame, 12).ok_or(Skip::Malformed("short Ethernet header"))?;
    let mut at = 14;
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(Skip::Malformed("too many VLAN tags"));
        }
        ethertype = be16(frame, at + 2).ok_or(Skip::Malformed("short VLAN tag"))?;
        at += 4;
    }
    by_ethertype(ethertype, frame.get(at..).unwrap_or_default())
}

fn by_ethertype(ethertype: u16, body: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(body),
        ETHERTYPE_IPV6 => ipv6(body),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(p: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    let b0 = *p.first().ok_or(Skip::Malformed("empty IPv4 packet"))?;
    if b0 >> 4 != 4 {
        return Err(Skip::Malformed("IPv4 version field is not 4"));
    }
    let ihl = usize::from(b0 & 0x0F) * 4;
    if ihl < 20 || p.len() < ihl {
        return Err(Skip::Malformed("short IPv4 header"));
    }
    let total = usize::from(be16(p, 2).ok_or(Skip::Malformed("short IPv4 header"))?);
    let frag = be16(p, 6).ok_or(Skip::Malformed("short IPv4 header"))?;
    // More-fragments flag or a non-zero offset: a piece of a fragmented datagram.
    if frag & 0x3FFF != 0 {
        return Err(Skip::Fragment);
    }
    if p[9] != 6 {
        return Err(Skip::NotTcp);
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    // total == 0 happens with TCP segmentation offload on the capturing host.
    let claimed = if total == 0 {
        None
    } else if total < ihl {
        return Err(Skip::Malformed("IPv4 total length shorter than its header"));
    } else {
        Some(total - ihl)
    };
    tcp(IpAddr::V4(src), IpAddr::V4(dst), &p[ihl..], claimed)
}

fn ipv6(p: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    if p.len() < 40 {
        return Err(Skip::Malformed("short IPv6 header"));
    }
    if p[0] >> 4 != 6 {
        return Err(Skip::Malformed("IPv6 version field is not 6"));
    }
    let payload_len = usize::from(be16(p, 4).ok_or(Skip::Malformed("short IPv6 header"))?);
    let mut next = p[6];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&p[8..24]);
    dst.copy_from_slice(&p[24..40]);
    // A payload length of 0 is a jumbogram (or TSO): use what was captured.
    let mut claimed = (payload_len != 0).then_some(payload_len);
    let mut at = 40;
    loop {
        match next {
            6 => break,
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let nh = *p
                    .get(at)
                    .ok_or(Skip::Malformed("short IPv6 extension header"))?;
                let len = (usize::from(
                    *p.get(at + 1)
                        .ok_or(Skip::Malformed("short IPv6 extension header"))?,
                ) + 1)
                    * 8;
                claimed = claimed.map(|c| c.saturating_sub(len));
                next = nh;
                at += len;
            }
            44 => {
                let nh = *p
                    .get(at)
                    .ok_or(Skip::Malformed("short IPv6 fragment header"))?;
                let off = be16(p, at + 2).ok_or(Skip::Malformed("short IPv6 fragment header"))?;
                // Offset or M flag set: a real fragment; otherwise an atomic fragment.
                if off & 0xFFF9 != 0 {
                    return Err(Skip::Fragment);
                }
                claimed = claimed.map(|c| c.saturating_sub(8));
                next = nh;
                at += 8;
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                let nh = *p.get(at).ok_or(Skip::Malformed("short IPv6 AH header"))?;
                let len = (usize::from(
                    *p.get(at + 1)
                        .ok_or(Skip::Malformed("short IPv6 AH header"))?,
                ) + 2)
                    * 4;
                claimed = claimed.map(|c| c.saturating_sub(len));
                next = nh;
                at += len;
            }
            _ => return Err(Skip::NotTcp),
        }
        if at > p.len() {
            return Err(Skip::Malformed(
                "IPv6 extension headers beyond the captured frame",
            ));
        }
    }
    tcp(
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        p.get(at..).unwrap_or_default(),
        claimed,
    )
}

/// `seg` is the IP payload as captured (possibly with link padding after it); `claimed` is
/// its length according to the IP header, if the header says.
fn tcp<'a>(
    src: IpAddr,
    dst: IpAddr,
    seg: &'a [u8],
    claimed: Option<usize>,
) -> Result<TcpSegment<'a>, Skip> {
    if seg.len() < 20 {
        return Err(Skip::Malformed("short TCP header"));
    }
    let doff = usize::from(seg[12] >> 4) * 4;
    if doff < 20 {
        return Err(Skip::Malformed("TCP data offset below 5"));
    }
    if seg.len() < doff {
        return Err(Skip::Malformed(
            "TCP header (options) beyond the captured frame",
        ));
    }
    let sport = be16(seg, 0).ok_or(Skip::Malformed("short TCP header"))?;
    let dport = be16(seg, 2).ok_or(Skip::Malformed("short TCP header"))?;
    let seq = be32(seg, 4).ok_or(Skip::Malformed("short TCP header"))?;
    let ack = be32(seg, 8).ok_or(Skip::Malformed("short TCP header"))?;
    let flags = seg[13];
    let (payload, wire_len) = tcp_payload(&seg[doff..], doff, claimed)?;
    Ok(TcpSegment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        seq,
        ack,
        flags,
        payload,
        wire_len,
    })
}

/// The TCP payload as captured after a header of `doff` bytes, and its length on the wire,
/// given `claimed`, the IP payload's length according to the IP header (if it says):
/// Ethernet padding and trailers are trimmed, a snapped payload is kept as it is.
#[inline]
pub fn tcp_payload(
    captured: &[u8],
    doff: usize,
    claimed: Option<usize>,
) -> Result<(&[u8], u32), Skip> {
    let (payload, wire_len) = match claimed {
        Some(c) if c < doff => return Err(Skip::Malformed("IP length shorter than TCP header")),
        Some(c) => {
            let wire = c - doff;
            (&captured[..captured.len().min(wire)], wire)
        }
        None => (captured, captured.len()),
    };
    let wire_len = u32::try_from(wire_len).map_err(|_| Skip::Malformed("TCP payload too long"))?;
    Ok((payload, wire_len))
}
