//! # TagWatch firmware simulator
//!
//! A city that produces the traffic TagWatch is built for, speaking TWB/1 exactly as station
//! firmware would, and recording the ground truth to check the server's conclusions against.
//!
//! ## Layout
//! - [`city`]: road grid, stations, vehicles, tags, radio (read rate, RSSI), ground truth.
//! - [`firmware`]: a station merging reads into DETECTIONS and STATUS frames.
//! - [`gps`]: GT06 GPS trackers on some vehicles, reporting over TCP as devices do.
//! - [`link`]: at-least-once delivery over UDP or TCP, with loss, resends and reconnects.
//! - [`patrol`]: patrol units on the roads, and a dispatcher that uses only TagWatch's answers.
//! - [`run`]: drives all of it against a server, in real or accelerated time.

pub mod city;
pub mod firmware;
pub mod gps;
pub mod link;
pub mod patrol;
pub mod run;

pub use city::{CityConfig, TruthInterval};
pub use link::{LinkStats, Transport};
pub use run::{run, station_key, stations, Outage, SimConfig, SimReport};
