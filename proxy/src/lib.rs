//! `dicomtap-proxy`: the in-path service. Listeners, the association lifecycle and
//! forwarding (byte for byte), routing, faults and interception, the recorder (pcapng +
//! JSON-lines event log), the Prometheus metrics endpoint, TLS termination and
//! origination, access control, and their configuration.
//!
//! What must not live here: dicomtap's own DICOM endpoints (the probe, replay, the
//! embedded peers and the demo are `dicomtap-endpoints`, which builds on this crate), and
//! DICOM decoding beyond what routing and fault answers need (`dicomtap-wire`).

pub mod access;
pub mod config;
pub mod events;
pub mod metrics;
pub mod recorder;
pub mod server;
pub mod tls;
