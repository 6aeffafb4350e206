//! # TagWatch devices: GPS trackers beside the roadside stations
//!
//! A stage beside the gateway: bytes from GPS trackers in, fixes and alarms out. A tracker
//! fitted to a vehicle is, to the rest of TagWatch, a mobile reader that only ever hears its own
//! vehicle's tag, wherever its GPS puts it (see `docs/DESIGN.md`, "GPS trackers").
//!
//! ## Layout
//! - [`report`]: what a device says, whatever its protocol: logins, fixes, alarms, power.
//! - [`gt06`]: the GT06 (Concox) protocol: framing, message decoding and the replies devices
//!   wait for. Pure: bytes in, values out, no I/O.
//! - [`registry`]: the registered trackers, shared with the API: vehicle, station, key, latest
//!   report, engine commands waiting.
//! - [`listener`]: devices' TCP connections; fixes and alarms become frames from the device's
//!   station, admitted by the gateway like a station's.
//! - [`metrics`]: what the listener counts.
//!
//! A second protocol (JT/T 808 is the next) is one more module beside [`gt06`] producing the same
//! [`report::Message`]s; nothing after the decoder knows which protocol a device speaks.

pub mod gt06;
pub mod listener;
pub mod metrics;
pub mod registry;
pub mod report;

pub use report::{Alarm, Fix, Imei, Login, Message, Power, Report};
