//! # TagWatch on several machines
//!
//! `serve` runs the whole pipeline in one process. A province runs it as roles joined by NATS
//! JetStream (the replicated log and the bus) and Postgres (the store); nothing here is a
//! consensus, replication or membership protocol of its own.
//!
//! ```text
//! stations ─TWB/1─▶ tagwatch gateway ─parts by partition─▶ JetStream TW_FRAMES ─▶ tracker shards
//!                   (MAC, split, publish; ACK after JetStream stored every part)
//!
//! tracker shard: leases ─▶ a worker per partition: consumer ─▶ tracker ─▶ commit (visits,
//!                alerts, the partition's sequence) ─▶ ack;   alerts ─▶ JetStream TW_ALERTS
//! ```
//!
//! ## Layout
//! - [`partition`]: the partition of a vehicle (a fixed hash; paired tags grouped).
//! - [`part`]: a frame cut into one message per partition, and read back.
//! - [`bus`]: the stream and the cluster's record of its partition count.
//! - [`lease`]: which shard applies which partition (leases in a JetStream key-value bucket).
//! - [`local`]: a `nats-server` of one's own on loopback, for tests and benches.
//! - [`publish`]: the gateway's handoff: publish, then answer the station.
//! - [`shard`]: a tracker shard: lease rounds, a worker per partition held.
//! - [`restore_partition`]: a partition's tracker rebuilt from the store when it is taken.
//! - [`apply_partition`]: a worker: parts applied, committed with the partition's sequence.
//! - [`seen`]: the frames a partition applied (resends past JetStream's duplicate window).
//! - [`alerts`]: the alerts stream, numbered once for every API node.
//! - [`commands`]: the commands stream: thefts, armed vehicles, fences, pairs to every shard.
//! - [`ask`]: live questions from API nodes to the partitions' workers (request–reply).

pub mod alerts;
pub mod apply_partition;
pub mod ask;
pub mod bus;
pub mod commands;
pub mod lease;
pub mod local;
pub mod part;
pub mod partition;
pub mod publish;
pub mod restore_partition;
pub mod seen;
pub mod shard;

pub use bus::{Bus, BusConfig, BusError};
pub use partition::Groups;
pub use publish::BusHandoff;
