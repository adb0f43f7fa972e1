//! `dimse::decode_command` on arbitrary bytes (a command set, Implicit VR Little Endian).
//!
//! Checked besides "no panic": what decodes re-encodes with `encode_command` into a
//! command set that decodes to the same command (modulo the group length, the data set
//! type value, the notes and empty sub-operation counters, which the encoder
//! normalises).
#![no_main]

use dicomtap_wire::dimse::{decode_command, encode_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = decode_command(data) else {
        return;
    };
    let encoded = encode_command(&first);
    let second = decode_command(&encoded).expect("an encoded command decodes");
    let mut a = first.clone();
    let mut b = second;
    for c in [&mut a, &mut b] {
        c.group_length = None;
        c.data_set_type = None;
        c.notes.clear();
        // An empty counter element, e.g. (0000,1021) with length 0, decodes as counters
        // that are all absent; the encoder writes nothing for them.
        if c.sub_operations == Some(Default::default()) {
            c.sub_operations = None;
        }
    }
    assert_eq!(a, b, "decode(encode(decode(x))) differs from decode(x)");
});
