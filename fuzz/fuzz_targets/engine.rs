//! The whole engine: a script of operations on both directions of one `Conversation`.
//!
//! Input format (also what the seeds in fuzz/seeds/engine are written in):
//! - byte 0 picks the caps: bits 0-1 `max_association_pdu` (64, 1024, 16 KiB, 1 MiB),
//!   bits 2-3 `max_command_bytes` (16, 256, 4 KiB, 64 KiB), bits 4-5 `peek_bytes`
//!   (0, 64, 4 KiB, 64 KiB), bit 6 `emit_data`, bit 7 clear = `emit_pdata`;
//! - then records, each an op byte (bit 7: 0 requestor, 1 acceptor) and its operands:
//!   - 0..=99: feed, u16 big-endian length, that many bytes (fewer at the end) in one call;
//!   - 100..=109: feed like above, split into chunks of 1..=16 bytes (size from the
//!     op byte);
//!   - 110..=114: gap, u32 big-endian count of missing bytes;
//!   - 115..=119: resynchronize;
//!   - 120..=123: end of stream (even: close, odd: reset);
//!   - 124..=127: drain the events.
//!
//! Checked besides "no panic": each direction's offset is the bytes fed plus the bytes
//! declared missing, no event points past the bytes seen, every event but data fragments serializes.
#![no_main]

use dicomtap_wire::{Conversation, EngineConfig, EventKind, Side, StreamEnd};
use libfuzzer_sys::fuzz_target;

fn drain(conv: &mut Conversation, seen: &[u64; 2]) {
    while let Some(event) = conv.poll() {
        assert!(
            event.offset <= seen[event.from.index()],
            "event at offset {} of the {} stream, only {} bytes seen: {event:?}",
            event.offset,
            event.from,
            seen[event.from.index()]
        );
        // Data fragments are never serialized (`#[serde(skip)]`, object export only).
        if !matches!(event.kind, EventKind::DataFragment(_)) {
            serde_json::to_string(&event).expect("events serialize");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&caps, mut rest)) = data.split_first() else {
        return;
    };
    let config = EngineConfig {
        max_association_pdu: [64, 1024, 16 * 1024, 1 << 20][usize::from(caps & 3)],
        max_command_bytes: [16, 256, 4096, 65536][usize::from(caps >> 2 & 3)],
        peek_bytes: [0, 64, 4096, 65536][usize::from(caps >> 4 & 3)],
        emit_data: caps & 0x40 != 0,
        emit_pdata: caps & 0x80 == 0,
    };
    let mut conv = Conversation::new(config);
    // Bytes fed plus bytes declared missing, per side; and whether the side was fed after
    // its end (what the offset means then is the engine's choice).
    let mut seen = [0u64; 2];
    let mut after_end = [false; 2];
    let mut ended = [false; 2];
    let mut ts = 1_700_000_000_000_000u64;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let side = if op & 0x80 == 0 {
            Side::Requestor
        } else {
            Side::Acceptor
        };
        let i = side.index();
        let kind = op & 0x7F;
        ts += u64::from(kind);
        match kind {
            0..=109 => {
                let Some((len, tail)) = rest.split_first_chunk::<2>() else {
                    break;
                };
                let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
                let (bytes, tail) = tail.split_at(len);
                rest = tail;
                if kind < 100 {
                    conv.feed(side, ts, bytes);
                } else {
                    for chunk in bytes.chunks(usize::from(kind - 99) + (usize::from(kind) % 7)) {
                        conv.feed(side, ts, chunk);
                    }
                }
                seen[i] += len as u64;
                after_end[i] |= ended[i];
            }
            110..=114 => {
                let Some((n, tail)) = rest.split_first_chunk::<4>() else {
                    break;
                };
                rest = tail;
                let missing = u64::from(u32::from_be_bytes(*n));
                conv.gap(side, ts, missing);
                seen[i] += missing;
                after_end[i] |= ended[i];
            }
            115..=119 => conv.resynchronize(side),
            120..=123 => {
                let how = if kind % 2 == 0 {
                    StreamEnd::Close
                } else {
                    StreamEnd::Reset
                };
                conv.end(side, ts, how);
                ended[i] = true;
            }
            _ => drain(&mut conv, &seen),
        }
        for side in [Side::Requestor, Side::Acceptor] {
            if !after_end[side.index()] {
                assert_eq!(
                    conv.offset(side),
                    seen[side.index()],
                    "offset of the {side} stream"
                );
            }
        }
    }
    conv.end(Side::Requestor, ts, StreamEnd::Close);
    conv.end(Side::Acceptor, ts, StreamEnd::Close);
    drain(&mut conv, &seen);
    let _ = conv.phase();
    let _ = conv.accepted_contexts().count();
});
