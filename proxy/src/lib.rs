//! `dicomtap-proxy`: the live tokio proxy, the recorder (pcapng + JSON-lines event log),
//! the Prometheus metrics endpoint, and the embedded DICOM peers used by `dicomtap demo`.
//! The DICOM understanding itself lives in `dicomtap-wire`; nothing here decodes PDUs
//! beyond what routing and fault answers need.

pub mod access;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod peers;
pub mod probe;
pub mod recorder;
pub mod replay;
pub mod server;
pub mod tls;
