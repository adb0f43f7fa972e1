//! `dicomtap proxy` end to end (docs/proxy.md, docs/tls.md, docs/access-control.md,
//! docs/interception.md): forwarding between real peers, the evidence it records, its
//! statements, TLS, access control, interception mode and the `/metrics` endpoint.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod access;
mod evidence;
mod interception;
mod metrics_endpoint;
mod real_peers;
mod statements;
mod tls;
