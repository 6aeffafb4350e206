//! # TagWatch gateway
//!
//! The first stage of the pipeline: station frames in, verified frames out.
//!
//! ## Layout
//! - [`wire`]: the TWB/1 codec, pure (bytes + nom, no I/O).
//! - [`framing`]: a TCP byte stream cut into whole frames, pure; the simulator uses it too.
//! - [`keys`]: the station key registry MACs are checked against.
//! - [`server`]: UDP and TCP listeners; each frame is authenticated, decoded and queued for the
//!   tracker through a bounded channel (BUSY when it is full).
//! - [`metrics`]: what the gateway counts.

pub mod framing;
pub mod keys;
pub mod metrics;
pub mod server;
pub mod wire;

pub use keys::StationKeys;
pub use server::{
    serve_tcp, serve_udp, AckPath, Admission, Content, Gateway, GatewayConfig, Handoff, Inbound,
    Refused,
};
