//! Conformance findings (docs/rules/, docs/findings.md): every rule produced by a real peer
//! on loopback and reported by `dicomtap analyze --statements`, the bundled statements
//! against their real peers, and the `rules` command.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod bundled;
mod cli;
mod data;
mod negotiation;
mod peers;
