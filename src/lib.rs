//! # TagWatch
//!
//! Finds stolen vehicles from the radio tags they carry. This crate assembles the pipeline
//! (`docs/DESIGN.md`):
//!
//! ```text
//! stations ──UDP/TCP──▶ gateway ──frames──▶ ingest (dedupe + tracker) ──flushes──▶ store writer
//!    ▲                                          │ alerts                          │ commit
//!    └──────────────── ACK ◀────────────────────┼─────────────────────────────────┘
//!                                               ▼
//!                                   alert bus ──SSE──▶ api ◀── officers, admins
//! ```
//!
//! The stages are crates: `tagwatch-gateway` (wire format, UDP and TCP), `tagwatch-ingest` (the
//! exactly-once core), `tagwatch-tracker`, `tagwatch-store`, `tagwatch-api`. This one only
//! reads the configuration and wires them together.
//!
//! ## Layout
//! - [`config`]: settings from file, environment and flags.
//! - [`server`]: starts and stops the whole pipeline.
//! - [`gateway_role`]: `tagwatch gateway`, a cluster's stateless entry point for stations.
//! - [`api_role`]: `tagwatch api`, a cluster's HTTP API (alerts from the stream, changes to it).
//! - [`shard_role`]: `tagwatch shard`, a cluster's tracker shard (partitions by lease).
//! - [`descriptors`]: the open-file limit, raised and shared between kinds of connection.
//! - [`signals`]: Ctrl-C and SIGTERM, both a clean stop.
//! - [`demo`]: the simulated city against a real server, in one process.

pub mod api_role;
pub mod config;
pub mod demo;
pub mod demo_patrol;
pub mod descriptors;
pub mod devices;
pub mod gateway_role;
pub mod server;
pub mod shard_role;
pub mod signals;

pub use config::{Config, Secret};
pub use server::Server;

/// A fresh random token (32 bytes, hex) for admin access or a station key.
pub fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(hex::encode(buf))
}
