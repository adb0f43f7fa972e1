//! `peek::peek_dataset` on arbitrary bytes.
//!
//! Input format: byte 0 picks the encoding (low 3 bits modulo 6: implicit LE, explicit LE,
//! explicit BE, deflated, encapsulated, unknown) and bit 7 says the data set is complete;
//! the rest is the data set.
//!
//! Checked besides "no panic": the reported lists stay within `MAX_LISTED`, and the bytes
//! examined never exceed the input (or `MAX_INFLATED` for a deflated data set).
#![no_main]

use dicomtap_wire::peek::{MAX_INFLATED, MAX_LISTED, peek_dataset};
use dicomtap_wire::syntax::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let encoding = match (sel & 7) % 6 {
        0 => Encoding::ImplicitVrLittleEndian,
        1 => Encoding::ExplicitVrLittleEndian,
        2 => Encoding::ExplicitVrBigEndian,
        3 => Encoding::DeflatedExplicitVrLittleEndian,
        4 => Encoding::Encapsulated,
        _ => Encoding::Unknown,
    };
    let complete = sel & 0x80 != 0;
    let peek = peek_dataset(bytes, encoding, complete);
    assert!(peek.invalid_text.len() <= MAX_LISTED);
    assert!(peek.private_creators.len() <= MAX_LISTED);
    let limit = if encoding == Encoding::DeflatedExplicitVrLittleEndian {
        MAX_INFLATED
    } else {
        bytes.len()
    };
    assert!(
        peek.examined <= limit,
        "examined {} of {} bytes",
        peek.examined,
        bytes.len()
    );
});
