//! `dicomtap analyze`, `export` and `pdu` on captures of real peers (docs/analyze.md): the
//! engine against tshark's DICOM dissector and the peers' logs, sessions and how they end,
//! exported objects.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../netns/mod.rs"]
mod netns;
#[path = "../support/mod.rs"]
mod support;

mod endings;
mod export;
mod real_peers;
mod wire_real_peers;
