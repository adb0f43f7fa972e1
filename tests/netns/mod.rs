//! Helpers for the capture-based end-to-end tests (`tests/analyze/export.rs`,
//! `tests/analyze/real_peers.rs`): a network namespace pair joined by a veth link at MTU
//! 1500 (so PDUs span many TCP segments), and deterministic capture rewriting (split
//! segments, drop, swap, duplicate) to produce loss, reordering and duplication.
//!
//! Everything cleans up after itself: namespaces are deleted by a Drop guard.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use dicomtap_analyzer::capture::{PacketReader, link};

// ---------------------------------------------------------------------------------------
// Network namespaces

/// Two network namespaces, `client` and `server`, joined by a veth pair at MTU 1500 with
/// segmentation offload limited to one segment, addresses 10.99.N.1/30 (client) and
/// 10.99.N.2/30 (server). Deleted on drop.
pub struct NetnsPair {
    pub client: String,
    pub server: String,
    pub client_if: String,
    pub server_if: String,
    pub client_ip: String,
    pub server_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetnsPair {
    /// Creates the pair, or says why it cannot (not root, no `ip`, no netns support).
    pub fn create() -> Result<NetnsPair, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let subnet = (std::process::id() % 60 + n * 64) % 250 + 1;
        let pair = NetnsPair {
            client: format!("dtc{tag}"),
            server: format!("dts{tag}"),
            client_if: format!("dtc{tag}"),
            server_if: format!("dts{tag}"),
            client_ip: format!("10.99.{subnet}.1"),
            server_ip: format!("10.99.{subnet}.2"),
        };
        ip(&["netns", "add", &pair.client])?;
        // From here on, Drop cleans up whatever was made.
        ip(&["netns", "add", &pair.server])?;
        ip(&[
            "link",
            "add",
            &pair.client_if,
            "type",
            "veth",
            "peer",
            "name",
            &pair.server_if,
        ])?;
        ip(&["link", "set", &pair.client_if, "netns", &pair.client])?;
        ip(&["link", "set", &pair.server_if, "netns", &pair.server])?;
        for (ns, ifname, addr) in [
            (&pair.client, &pair.client_if, &pair.client_ip),
            (&pair.server, &pair.server_if, &pair.server_ip),
        ] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                ifname,
            ])?;
            ip(&["-n", ns, "link", "set", ifname, "mtu", "1500", "up"])?;
            // No GSO super-packets in the capture: every frame fits the MTU.
            let _ = ip(&["-n", ns, "link", "set", ifname, "gso_max_segs", "1"]);
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// `ip netns exec <ns> program args...`: the process keeps the PID of `ip` (which
    /// execs the program), so the test can end it by PID.
    pub fn command(ns: &str, program: &str, args: &[String]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args);
        cmd
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the peer.
        let _ = ip(&["netns", "del", &self.client]);
        let _ = ip(&["netns", "del", &self.server]);
    }
}

// ---------------------------------------------------------------------------------------
// Capture rewriting

/// A captured frame, with its TCP facts when it is an IPv4 (or IPv6) TCP segment.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ts_us: u64,
    pub link_type: u32,
    pub data: Vec<u8>,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Offset of the TCP payload in `data` and its length.
    pub payload_at: usize,
    pub payload: usize,
}

impl Frame {
    pub fn payload_bytes(&self) -> &[u8] {
        &self.data[self.payload_at..self.payload_at + self.payload]
    }
}

pub fn read_frames(path: &Path) -> Vec<Frame> {
    let mut reader = PacketReader::open(path).unwrap();
    let mut frames = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        let (src_port, dst_port, seq, payload_at, payload) = match link::decode(p.link_type, p.data)
        {
            Ok(seg) => {
                let at = seg.payload.as_ptr() as usize - p.data.as_ptr() as usize;
                (
                    seg.src.port(),
                    seg.dst.port(),
                    seg.seq,
                    at,
                    seg.payload.len(),
                )
            }
            Err(_) => (0, 0, 0, 0, 0),
        };
        frames.push(Frame {
            ts_us: p.ts_us,
            link_type: p.link_type,
            data: p.data.to_vec(),
            src_port,
            dst_port,
            seq,
            payload_at,
            payload,
        });
    }
    frames
}

/// Writes frames as a classic (microsecond, little-endian) pcap file.
pub fn write_pcap(path: &Path, frames: &[Frame]) {
    let link = frames.first().map_or(1, |f| f.link_type);
    let mut out = Vec::new();
    out.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    for f in frames {
        assert_eq!(f.link_type, link, "one link type per pcap file");
        out.extend_from_slice(&((f.ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((f.ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    std::fs::write(path, out).unwrap();
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for c in chunks {
        for &b in *c {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Splits every TCP segment of IPv4-over-Ethernet frames with more than `mss` payload
/// bytes into segments of at most `mss` (sequence numbers, lengths and checksums fixed),
/// as a network with a 1500-byte MTU would have carried them.
pub fn resegment(frames: &[Frame], mss: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    for f in frames {
        let ipv4 = f.link_type == 1 && f.data.len() > 14 && f.data[12..14] == [0x08, 0x00];
        if f.payload <= mss || !ipv4 {
            out.push(f.clone());
            continue;
        }
        let ihl = usize::from(f.data[14] & 0x0F) * 4;
        let ip_start = 14;
        let tcp_start = ip_start + ihl;
        let headers = &f.data[..f.payload_at];
        let payload = f.payload_bytes();
        let mut off = 0;
        while off < payload.len() {
            let n = mss.min(payload.len() - off);
            let mut d = headers.to_vec();
            d.extend_from_slice(&payload[off..off + n]);
            let ip_len = (d.len() - ip_start) as u16;
            d[ip_start + 2..ip_start + 4].copy_from_slice(&ip_len.to_be_bytes());
            d[ip_start + 10..ip_start + 12].copy_from_slice(&[0, 0]);
            let c = checksum(&[&d[ip_start..tcp_start]]);
            d[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
            let seq = f.seq.wrapping_add(off as u32);
            d[tcp_start + 4..tcp_start + 8].copy_from_slice(&seq.to_be_bytes());
            // PSH only on the last piece.
            if off + n < payload.len() {
                d[tcp_start + 13] &= !0x08;
            }
            d[tcp_start + 16..tcp_start + 18].copy_from_slice(&[0, 0]);
            let tcp_len = (d.len() - tcp_start) as u16;
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&d[ip_start + 12..ip_start + 20]);
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&tcp_len.to_be_bytes());
            let c = checksum(&[&pseudo, &d[tcp_start..]]);
            d[tcp_start + 16..tcp_start + 18].copy_from_slice(&c.to_be_bytes());
            out.push(Frame {
                ts_us: f.ts_us,
                link_type: f.link_type,
                data: d,
                src_port: f.src_port,
                dst_port: f.dst_port,
                seq,
                payload_at: f.payload_at,
                payload: n,
            });
            off += n;
        }
    }
    out
}

/// Indexes of the frames carrying TCP payload sent to `port` (client -> server) or from
/// it (server -> client).
pub fn data_frames(frames: &[Frame], port: u16, to_server: bool) -> Vec<usize> {
    frames
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.payload > 0
                && if to_server {
                    f.dst_port == port
                } else {
                    f.src_port == port
                }
        })
        .map(|(i, _)| i)
        .collect()
}

/// Without the frames at `drop`.
pub fn without(frames: &[Frame], drop: &[usize]) -> Vec<Frame> {
    frames
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, f)| f.clone())
        .collect()
}

/// With each frame at `at` swapped with the next data frame of the same direction
/// (timestamps kept in place, so the capture stays in time order).
pub fn swapped(frames: &[Frame], pairs: &[(usize, usize)]) -> Vec<Frame> {
    let mut out = frames.to_vec();
    for &(a, b) in pairs {
        let (ta, tb) = (out[a].ts_us, out[b].ts_us);
        out.swap(a, b);
        out[a].ts_us = ta;
        out[b].ts_us = tb;
    }
    out
}

/// With each frame at `at` sent twice (a retransmission).
pub fn duplicated(frames: &[Frame], at: &[usize]) -> Vec<Frame> {
    let mut out = Vec::with_capacity(frames.len() + at.len());
    for (i, f) in frames.iter().enumerate() {
        out.push(f.clone());
        if at.contains(&i) {
            out.push(f.clone());
        }
    }
    out
}

/// The reassembled payload bytes sent to (or from) `port`, in sequence order, with the
/// stream offset of each frame's first byte. For one connection only.
pub fn stream_offsets(frames: &[Frame], idx: &[usize]) -> Vec<(usize, u64)> {
    let Some(&first) = idx.first() else {
        return Vec::new();
    };
    let base = frames[first].seq;
    idx.iter()
        .map(|&i| (i, u64::from(frames[i].seq.wrapping_sub(base))))
        .collect()
}
