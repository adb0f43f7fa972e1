//! Micro-benchmarks of the wire engine: P-DATA decode throughput, association negotiation
//! decode, DIMSE command decode. Run with `cargo bench --bench wire`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dicomtap_wire::dimse::{Command, decode_command, encode_command, field};
use dicomtap_wire::{Conversation, EngineConfig, Side};

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn item(t: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 0];
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn pdu(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 0];
    v.extend_from_slice(&be32(body.len() as u32));
    v.extend_from_slice(body);
    v
}

/// An A-ASSOCIATE-RQ with `n` storage contexts of 3 transfer syntaxes each.
fn associate_rq(n: u8) -> Vec<u8> {
    let mut body = vec![0, 1, 0, 0];
    body.extend_from_slice(b"PACS            MODALITY        ");
    body.extend_from_slice(&[0; 32]);
    body.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    for i in 0..n {
        let mut pc = vec![2 * i + 1, 0, 0, 0];
        pc.extend(item(0x30, b"1.2.840.10008.5.1.4.1.1.2"));
        for ts in [
            &b"1.2.840.10008.1.2.1"[..],
            b"1.2.840.10008.1.2",
            b"1.2.840.10008.1.2.4.90",
        ] {
            pc.extend(item(0x40, ts));
        }
        body.extend(item(0x20, &pc));
    }
    let mut ui = item(0x51, &be32(16384));
    ui.extend(item(0x52, b"1.2.3.4.5"));
    ui.extend(item(0x55, b"BENCH"));
    body.extend(item(0x50, &ui));
    pdu(1, &body)
}

fn associate_ac() -> Vec<u8> {
    let mut body = vec![0, 1, 0, 0];
    body.extend_from_slice(b"PACS            MODALITY        ");
    body.extend_from_slice(&[0; 32]);
    body.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    let mut pc = vec![1, 0, 0, 0];
    pc.extend(item(0x40, b"1.2.840.10008.1.2.1"));
    body.extend(item(0x21, &pc));
    let mut ui = item(0x51, &be32(0));
    ui.extend(item(0x52, b"1.2.3.4.6"));
    body.extend(item(0x50, &ui));
    pdu(2, &body)
}

fn store_rq() -> Vec<u8> {
    let mut c = Command::new(field::C_STORE_RQ);
    c.message_id = Some(7);
    c.affected_sop_class = Some("1.2.840.10008.5.1.4.1.1.2".into());
    c.affected_sop_instance = Some("1.2.826.0.1.3680043.2.1125.1.123456789.1".into());
    c.priority = Some(0);
    c.has_dataset = true;
    encode_command(&c)
}

fn pdata(pc: u8, control: u8, data: &[u8]) -> Vec<u8> {
    let mut body = be32(data.len() as u32 + 2).to_vec();
    body.extend_from_slice(&[pc, control]);
    body.extend_from_slice(data);
    pdu(4, &body)
}

/// A C-STORE of a `size`-byte data set in 16 KiB PDUs.
fn store_stream(size: usize) -> Vec<u8> {
    let mut s = pdata(1, 3, &store_rq());
    let mut ds = Vec::with_capacity(size);
    for (g, e, v) in [
        (0x0008u16, 0x0016u16, &b"1.2.840.10008.5.1.4.1.1.2\0"[..]),
        (0x0008, 0x0018, b"1.2.3.4.5.6.7.8.9.0\0"),
        (0x0008, 0x0060, b"CT"),
    ] {
        ds.extend_from_slice(&g.to_le_bytes());
        ds.extend_from_slice(&e.to_le_bytes());
        ds.extend_from_slice(&(v.len() as u32).to_le_bytes());
        ds.extend_from_slice(v);
    }
    ds.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
    ds.extend_from_slice(&((size - ds.len() - 8) as u32).to_le_bytes());
    ds.resize(size, 0x5A);
    let chunks: Vec<&[u8]> = ds.chunks(16378).collect();
    for (i, c) in chunks.iter().enumerate() {
        s.extend(pdata(1, if i + 1 == chunks.len() { 2 } else { 0 }, c));
    }
    s
}

fn benches(c: &mut Criterion) {
    let rq = associate_rq(120);
    let ac = associate_ac();
    let mut g = c.benchmark_group("negotiation");
    g.throughput(Throughput::Bytes(rq.len() as u64));
    g.bench_function("associate_rq_120_contexts", |b| {
        b.iter(|| {
            let mut conv = Conversation::new(EngineConfig::default());
            conv.feed(Side::Requestor, 0, black_box(&rq));
            while conv.poll().is_some() {}
        })
    });
    g.finish();

    let cmd = store_rq();
    let mut g = c.benchmark_group("dimse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_c_store_rq", |b| {
        b.iter(|| decode_command(black_box(&cmd)))
    });
    g.finish();

    let stream = store_stream(8 << 20);
    let mut g = c.benchmark_group("pdata");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.sample_size(20);
    for chunk in [1460usize, 65536] {
        g.bench_function(format!("c_store_8MiB_chunks_{chunk}"), |b| {
            b.iter(|| {
                let mut conv = Conversation::new(EngineConfig::default());
                conv.feed(Side::Requestor, 0, &rq);
                conv.feed(Side::Acceptor, 0, &ac);
                for part in stream.chunks(chunk) {
                    conv.feed(Side::Requestor, 0, black_box(part));
                    while conv.poll().is_some() {}
                }
            })
        });
    }
    g.finish();
}

criterion_group!(wire, benches);
criterion_main!(wire);
