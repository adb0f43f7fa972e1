//! Device statements (docs/statements.md, docs/statement-import.md): `dicomtap statement
//! check|import|diff|infer` end to end.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod import;
mod infer;
