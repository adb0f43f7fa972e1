//! The same decoding as `dicomtap_analyzer::capture::link::decode`, through the
//! `etherparse` crate (0.21, a dev-dependency): the candidate that lost the comparison
//! of `tests/capture_link_compare.rs` and `benches/link.rs`, kept as their other side
//! (docs/architecture.md, "Link-layer decoding").
//!
//! etherparse's header slices do the Ethernet II header, VLAN tags, IPv4 (with AH), IPv6
//! and its extension headers (through its lax IP slicer: lengths that disagree with what
//! was captured fall back to the capture) and TCP. What it lacks goes through the
//! hand-written code: the pcap link-type dispatch, the SLL and SLL2 headers (etherparse
//! has SLL only in its strict slicer, SLL2 not at all), the BSD NULL/LOOP family, the
//! check of the IP version against the EtherType or link, and the payload length on the
//! wire of a snapped segment (etherparse falls back to the captured length and keeps no
//! claimed length). Its whole-packet slicer (`LaxSlicedPacket`) was measured too and
//! was slower still.

use ::etherparse::{
    EtherType, Ethernet2Slice, LaxIpSlice, SingleVlanSlice, TcpSlice, ether_type, ip_number,
};

use dicomtap_analyzer::capture::link::{self, MAX_VLAN_TAGS, Skip, TcpSegment, linktype};
use std::net::SocketAddr;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// `link::decode` through etherparse.
pub fn decode(link: u32, frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    match link & 0xFFFF {
        linktype::ETHERNET => {
            let eth = Ethernet2Slice::from_slice_without_fcs(frame)
                .map_err(|_| Skip::Malformed("short Ethernet header"))?;
            let (mut ethertype, mut body) = (eth.ether_type(), eth.payload_slice());
            let mut tags = 0;
            while matches!(
                ethertype,
                ether_type::VLAN_TAGGED_FRAME
                    | ether_type::PROVIDER_BRIDGING
                    | ether_type::VLAN_DOUBLE_TAGGED_FRAME
            ) {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(Skip::Malformed("too many VLAN tags"));
                }
                let tag = SingleVlanSlice::from_slice(body)
                    .map_err(|_| Skip::Malformed("short VLAN tag"))?;
                (ethertype, body) = (tag.ether_type(), tag.payload_slice());
            }
            by_ethertype(ethertype.0, body)
        }
        linktype::LINUX_SLL => {
            let proto = be16(frame, 14).ok_or(Skip::Malformed("short SLL header"))?;
            by_ethertype(proto, frame.get(16..).unwrap_or_default())
        }
        linktype::LINUX_SLL2 => {
            let proto = be16(frame, 0).ok_or(Skip::Malformed("short SLL2 header"))?;
            let body = frame
                .get(20..)
                .ok_or(Skip::Malformed("short SLL2 header"))?;
            by_ethertype(proto, body)
        }
        linktype::NULL | linktype::LOOP => {
            let af: [u8; 4] = frame
                .get(0..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(Skip::Malformed("short loopback header"))?;
            let (le, be) = (u32::from_le_bytes(af), u32::from_be_bytes(af));
            let body = frame.get(4..).unwrap_or_default();
            if le == 2 || be == 2 {
                ip(4, body)
            } else if [24, 28, 30].contains(&le) || [24, 28, 30].contains(&be) {
                ip(6, body)
            } else {
                Err(Skip::NotIp)
            }
        }
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => {
            match frame.first().map(|b| b >> 4) {
                Some(v @ (4 | 6)) => ip(v, frame),
                Some(_) => Err(Skip::NotIp),
                None => Err(Skip::Malformed("empty frame")),
            }
        }
        linktype::IPV4 => ip(4, frame),
        linktype::IPV6 => ip(6, frame),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

/// An IP packet that the link says is of version `v`.
fn ip(v: u8, body: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    match body.first().map(|b| b >> 4) {
        None if v == 4 => return Err(Skip::Malformed("empty IPv4 packet")),
        Some(got) if got != v => {
            return Err(Skip::Malformed(if v == 4 {
                "IPv4 version field is not 4"
            } else {
                "IPv6 version field is not 6"
            }));
        }
        _ => {}
    }
    let (ip, stop) =
        LaxIpSlice::from_slice(body).map_err(|_| Skip::Malformed("short IP header"))?;
    if ip.is_fragmenting_payload() {
        return Err(Skip::Fragment);
    }
    if let Some((_, layer)) = stop {
        return Err(Skip::Malformed(layer.error_title()));
    }
    if ip.payload_ip_number() != ip_number::TCP {
        return Err(Skip::NotTcp);
    }
    // The IP payload's length according to the header, when it says.
    let claimed = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            let total = usize::from(header.total_len());
            let ihl = header.slice().len();
            if total == 0 {
                None
            } else if total < ihl {
                return Err(Skip::Malformed("IPv4 total length shorter than its header"));
            } else {
                let auth = v4.extensions().auth.map_or(0, |a| a.slice().len());
                Some((total - ihl).saturating_sub(auth))
            }
        }
        LaxIpSlice::Ipv6(v6) => match usize::from(v6.header().payload_length()) {
            0 => None,
            len => Some(len.saturating_sub(v6.extensions().slice().len())),
        },
    };
    let tcp = TcpSlice::from_slice(ip.payload().payload)
        .map_err(|_| Skip::Malformed("TCP Header Error"))?;
    let header = tcp.header_slice();
    let doff = header.len();
    let (payload, wire_len) = link::tcp_payload(tcp.payload(), doff, claimed)?;
    Ok(TcpSegment {
        src: SocketAddr::new(ip.source_addr(), tcp.source_port()),
        dst: SocketAddr::new(ip.destination_addr(), tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: header.get(13).copied().unwrap_or_default(),
        payload,
        wire_len,
    })
}

fn by_ethertype(ethertype: u16, body: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    match EtherType(ethertype) {
        EtherType::IPV4 => ip(4, body),
        EtherType::IPV6 => ip(6, body),
        _ => Err(Skip::NotIp),
    }
}
