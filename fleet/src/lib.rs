//! `dicomtap-fleet`: many dicomtap instances as one fleet.
//!
//! - [`schema`]: the fleet events and their subjects on the bus (the contract);
//! - [`digest`]: an instance's event stream turned into fleet events;
//! - [`bus`]: TLS and credentials towards the bus;
//! - [`spool`] and [`publisher`]: at-least-once delivery to NATS JetStream, through a
//!   bounded disk spool while the bus is away, never on the forwarding path;
//! - [`state`], [`consumer`] and [`report`]: the central consumer, its checks across
//!   sites, its metrics and the fleet report.
//!
//! See docs/fleet.md.

pub mod bus;
pub mod consumer;
pub mod digest;
pub mod publisher;
pub mod report;
pub mod schema;
pub mod spool;
pub mod state;

pub use publisher::{EventSender, Publisher, PublisherConfig};
pub use schema::{Body, FleetEvent, Identity, Kind};

/// Microseconds since the UNIX epoch (the proxy's clock, for one timeline).
pub use dicomtap_proxy::recorder::now_us;
