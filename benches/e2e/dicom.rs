//! Test data and a minimal raw DICOM Upper Layer client.
//!
//! Part-10 files are written byte by byte (Explicit VR Little Endian, a CT image with
//! pseudo-random pixel data) so the harness needs no data set library and storescu reads
//! them like any modality's files. The client sends hand-built PDUs over a plain socket so
//! that the latency measured is the network path's, not a DICOM library's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dicomtap_endpoints::peers::dimse::CommandSet;

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

static UID_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh UID under 2.25 (a decimal 128-bit value from the clock, pid and a counter).
pub fn new_uid() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = UID_COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
    let v = (nanos & ((1u128 << 64) - 1)) << 56 ^ (u128::from(std::process::id()) << 32) ^ n;
    format!("2.25.{}", v | 1u128 << 100)
}

fn elem_short(out: &mut Vec<u8>, group: u16, element: u16, vr: &[u8; 2], value: &[u8]) {
    let pad = if vr == b"UI" { 0u8 } else { b' ' };
    let len = value.len() + value.len() % 2;
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(value);
    if value.len() % 2 == 1 {
        out.push(pad);
    }
}

fn elem_us(out: &mut Vec<u8>, group: u16, element: u16, v: u16) {
    elem_short(out, group, element, b"US", &v.to_le_bytes());
}

fn elem_long_header(out: &mut Vec<u8>, group: u16, element: u16, vr: &[u8; 2], len: u32) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&len.to_le_bytes());
}

/// xorshift64*: fast, incompressible-looking pixel bytes.
fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Writes one CT image of `rows` x `cols` 16-bit pixels as a Part-10 file; returns its size.
pub fn write_ct_file(
    path: &Path,
    rows: u16,
    cols: u16,
    study: &str,
    series: &str,
    number: usize,
) -> anyhow::Result<u64> {
    let instance = new_uid();
    let mut meta = Vec::new();
    elem_long_header(&mut meta, 0x0002, 0x0001, b"OB", 2);
    meta.extend_from_slice(&[0, 1]);
    elem_short(
        &mut meta,
        0x0002,
        0x0002,
        b"UI",
        CT_IMAGE_STORAGE.as_bytes(),
    );
    elem_short(&mut meta, 0x0002, 0x0003, b"UI", instance.as_bytes());
    elem_short(&mut meta, 0x0002, 0x0010, b"UI", EXPLICIT_VR_LE.as_bytes());
    elem_short(
        &mut meta,
        0x0002,
        0x0012,
        b"UI",
        b"1.2.826.0.1.3680043.10.1437.1",
    );
    elem_short(&mut meta, 0x0002, 0x0013, b"SH", b"DICOMTAP_BENCH");

    let mut ds = Vec::new();
    elem_short(&mut ds, 0x0008, 0x0016, b"UI", CT_IMAGE_STORAGE.as_bytes());
    elem_short(&mut ds, 0x0008, 0x0018, b"UI", instance.as_bytes());
    elem_short(&mut ds, 0x0008, 0x0060, b"CS", b"CT");
    elem_short(&mut ds, 0x0010, 0x0010, b"PN", b"BENCH^PATIENT");
    elem_short(&mut ds, 0x0010, 0x0020, b"LO", b"BENCH-0001");
    elem_short(&mut ds, 0x0020, 0x000D, b"UI", study.as_bytes());
    elem_short(&mut ds, 0x0020, 0x000E, b"UI", series.as_bytes());
    elem_short(
        &mut ds,
        0x0020,
        0x0013,
        b"IS",
        number.to_string().as_bytes(),
    );
    elem_us(&mut ds, 0x0028, 0x0002, 1);
    elem_short(&mut ds, 0x0028, 0x0004, b"CS", b"MONOCHROME2");
    elem_us(&mut ds, 0x0028, 0x0010, rows);
    elem_us(&mut ds, 0x0028, 0x0011, cols);
    elem_us(&mut ds, 0x0028, 0x0100, 16);
    elem_us(&mut ds, 0x0028, 0x0101, 16);
    elem_us(&mut ds, 0x0028, 0x0102, 15);
    elem_us(&mut ds, 0x0028, 0x0103, 0);
    let px_len = u32::from(rows) * u32::from(cols) * 2;
    elem_long_header(&mut ds, 0x7FE0, 0x0010, b"OW", px_len);

    let mut file = Vec::with_capacity(132 + 12 + meta.len() + ds.len() + px_len as usize);
    file.extend_from_slice(&[0u8; 128]);
    file.extend_from_slice(b"DICM");
    elem_short(
        &mut file,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    file.extend_from_slice(&meta);
    file.extend_from_slice(&ds);
    let start = file.len();
    file.resize(start + px_len as usize, 0);
    fill_random(&mut file[start..], number as u64 * 0x9E37_79B9 + 7);
    std::fs::write(path, &file)?;
    Ok(file.len() as u64)
}

fn item(t: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 0];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn pdu(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 0];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ae(title: &str) -> [u8; 16] {
    let mut a = [b' '; 16];
    let t = title.as_bytes();
    a[..t.len().min(16)].copy_from_slice(&t[..t.len().min(16)]);
    a
}

/// An A-ASSOCIATE-RQ proposing Verification in Implicit VR Little Endian as context 1.
pub fn echo_associate_rq(calling: &str, called: &str) -> Vec<u8> {
    let mut body = vec![0, 1, 0, 0];
    body.extend_from_slice(&ae(called));
    body.extend_from_slice(&ae(calling));
    body.extend_from_slice(&[0; 32]);
    body.extend(item(0x10, APPLICATION_CONTEXT.as_bytes()));
    let mut pc = vec![1, 0, 0, 0];
    pc.extend(item(0x30, VERIFICATION.as_bytes()));
    pc.extend(item(0x40, IMPLICIT_VR_LE.as_bytes()));
    body.extend(item(0x20, &pc));
    let mut ui = item(0x51, &16384u32.to_be_bytes());
    ui.extend(item(0x52, b"1.2.826.0.1.3680043.10.1437.1"));
    ui.extend(item(0x55, b"DICOMTAP_BENCH"));
    body.extend(item(0x50, &ui));
    pdu(0x01, &body)
}

/// A P-DATA-TF with one C-ECHO-RQ command set on context 1.
pub fn echo_pdata(message_id: u16) -> anyhow::Result<Vec<u8>> {
    let cmd = CommandSet::echo_rq(message_id)
        .encode()
        .map_err(|e| anyhow::anyhow!("encoding C-ECHO-RQ: {e}"))?;
    let mut body = Vec::with_capacity(cmd.len() + 6);
    body.extend_from_slice(&(cmd.len() as u32 + 2).to_be_bytes());
    body.push(1); // presentation context id
    body.push(0x03); // command, last fragment
    body.extend_from_slice(&cmd);
    Ok(pdu(0x04, &body))
}

pub const RELEASE_RQ: [u8; 10] = [0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0];

/// The status of a C-ECHO-RSP in a P-DATA-TF PDU (header included), if it is one.
pub fn echo_rsp_status(pdu: &[u8]) -> Option<u16> {
    if pdu.first() != Some(&0x04) || pdu.len() < 12 {
        return None;
    }
    let cmd = CommandSet::decode(&pdu[12..]).ok()?;
    (cmd.command_field == 0x8030)
        .then_some(cmd.status)
        .flatten()
}

/// One PDU from a blocking stream, header included (bounded to 1 MiB: responses only).
pub fn read_pdu(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u8> {
    buf.resize(6, 0);
    s.read_exact(&mut buf[..6])?;
    let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
    anyhow::ensure!(len <= 1 << 20, "PDU of {len} bytes");
    buf.resize(6 + len, 0);
    s.read_exact(&mut buf[6..])?;
    Ok(buf[0])
}

/// A blocking association with Verification accepted, for latency measurements.
pub struct EchoAssociation {
    stream: TcpStream,
    buf: Vec<u8>,
    next_id: u16,
}

impl EchoAssociation {
    pub fn open(addr: SocketAddr, called: &str) -> anyhow::Result<EchoAssociation> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(&echo_associate_rq("BENCH-SCU", called))?;
        let mut buf = Vec::new();
        let t = read_pdu(&mut stream, &mut buf)?;
        anyhow::ensure!(
            t == 0x02,
            "{addr}: expected A-ASSOCIATE-AC, got PDU type {t:#04x}"
        );
        let mut a = EchoAssociation {
            stream,
            buf,
            next_id: 1,
        };
        let status = a.echo()?;
        anyhow::ensure!(status == Some(0), "{addr}: C-ECHO status {status:?}");
        Ok(a)
    }

    /// One C-ECHO round trip; the status of the response.
    pub fn echo(&mut self) -> anyhow::Result<Option<u16>> {
        let rq = echo_pdata(self.next_id)?;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.stream.write_all(&rq)?;
        let t = read_pdu(&mut self.stream, &mut self.buf)?;
        anyhow::ensure!(t == 0x04, "expected P-DATA-TF, got PDU type {t:#04x}");
        Ok(echo_rsp_status(&self.buf))
    }

    /// The same round trip with a pre-built request, checking only the PDU type (the hot
    /// loop of the latency measurement).
    pub fn echo_raw(&mut self, rq: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(rq)?;
        let t = read_pdu(&mut self.stream, &mut self.buf)?;
        anyhow::ensure!(t == 0x04, "expected P-DATA-TF, got PDU type {t:#04x}");
        Ok(())
    }

    pub fn release(mut self) -> anyhow::Result<()> {
        self.stream.write_all(&RELEASE_RQ)?;
        let t = read_pdu(&mut self.stream, &mut self.buf)?;
        anyhow::ensure!(t == 0x06, "expected A-RELEASE-RP, got PDU type {t:#04x}");
        Ok(())
    }
}
