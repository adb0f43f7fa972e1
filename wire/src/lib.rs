//! `dicomtap-wire`: the sans-IO DICOM Upper Layer (PS3.8) and DIMSE (PS3.7) engine.
//!
//! It is fed bytes per direction with timestamps, in chunks of any size, and emits typed,
//! serde-serializable [`Event`]s. Nothing in here touches a socket, a file or a clock:
//! the live proxy, the capture analyzer and the tests all drive the very same
//! [`Conversation`]. Every length read from the wire is checked against the bytes buffered
//! and against [`EngineConfig`] caps before anything is allocated.

pub mod assoc;
pub mod charset;
pub mod dimse;
pub mod encode;
pub mod engine;
pub mod event;
pub mod finding;
pub mod pdata;
pub mod pdu;
pub mod peek;
pub mod status;
pub mod syntax;
pub mod uid;

pub use engine::{Conversation, EngineConfig, StreamEnd};
pub use event::{Event, EventKind, Side};
pub use finding::{Finding, FindingCode, Severity};
