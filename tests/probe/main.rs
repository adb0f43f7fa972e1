//! `dicomtap probe` (docs/probe.md) against real SCPs, and the instances it generates
//! checked by dciodvfy and dcmdump.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod checks;
mod iods;
