//! # TagWatch on several machines
//!
//! `serve` runs the whole pipeline in one process. A province runs it as roles joined by NATS
//! JetStream (the replicated log and the bus) and Postgres (the store); nothing here is a
//! consensus, replication or membership protocol of its own.
//!
//! ```text
//! stations ─TWB/1─▶ tagwatch gateway ─parts by partition─▶ JetStream TW_FRAMES ─▶ tracker shards
//!                   (MAC, split, publish; ACK after JetStream stored every part)
//! ```
//!
//! ## Layout
//! - [`partition`]: the partition of a vehicle (a fixed hash; paired tags grouped).
//! - [`part`]: a frame cut into one message per partition, and read back.
//! - [`bus`]: the stream and the cluster's record of its partition count.
//! - [`lease`]: which shard applies which partition (leases in a JetStream key-value bucket).
//! - [`local`]: a `nats-server` of one's own on loopback, for tests and benches.
//! - [`publish`]: the gateway's handoff: publish, then answer the station.

pub mod bus;
pub mod lease;
pub mod local;
pub mod part;
pub mod partition;
pub mod publish;

pub use bus::{Bus, BusConfig, BusError};
pub use partition::Groups;
pub use publish::BusHandoff;
