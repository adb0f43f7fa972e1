//! `dicomtap-endpoints`: dicomtap's own DICOM endpoints and what is built on them.
//!
//! - [`peers`]: embedded SCU and SCP (C-ECHO, C-STORE, C-FIND, C-MOVE, Storage
//!   Commitment) and the storage IODs they generate;
//! - [`probe`]: the active probe of a device (its link, listener, checks, reports, matrix);
//! - [`replay`]: a recorded association sent again to a device;
//! - [`demo`]: the embedded scene of `dicomtap demo` (a proxy between two peers).
//!
//! What must not live here: the in-path proxy (listeners, forwarding, the recorder,
//! metrics, TLS termination, access control), which is `dicomtap-proxy`; decoding, which
//! is `dicomtap-wire`. This crate opens connections *as* a DICOM application entity.

pub mod demo;
pub mod peers;
pub mod probe;
pub mod replay;
