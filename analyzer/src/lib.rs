//! `dicomtap-analyzer`: capture input (pcap/pcapng, link layers, TCP reassembly), sessions
//! built from wire events, device statements, conformance rules and reports. No sockets.
pub mod analysis;
pub mod capture;
pub mod conformance;
pub mod export;
pub mod report;
pub mod session;
pub mod statement;
pub mod text;
