//! # TagWatch ingest: the exactly-once core
//!
//! Verified frames in (from the gateway), visits, alerts and ACKs out. A frame is applied to the
//! tracker once, journaled and committed, and only then acknowledged; an alert it raises is
//! published the moment it is raised. A process without the HTTP API can run it.
//!
//! ```text
//! gateway ─Inbound─▶ Ingest::run ─────────────── Flush ──▶ writer ──commit──▶ store
//!                    │ dedupe, alerts ahead,                 │ then ACK
//!                    │ admission, lanes, apply               └─ Committed ─▶ Ingest (dedupe)
//!                    └─ alerts ─▶ AlertBus ─▶ (API: SSE)
//! ```
//!
//! ## Layout, in the order a frame meets them
//! - [`restore`]: the live state rebuilt from the store at start (journal replay included).
//! - [`ingest`]: the task that owns the tracker: takes frames in, applies them, hands flushes on.
//! - [`dedupe`]: which (station, session, seq) frames are applied, in flight or committed.
//! - `Tracker::alert_ahead` (called at intake): a frame's stolen, armed, panic and tamper
//!   sightings alerted at once, whether the frame is then queued or told BUSY.
//! - [`admission`]: whether a frame can be applied within the bound, or is told BUSY.
//! - [`lanes`]: the queue: live frames, then stations' backlogs.
//! - [`apply`]: a frame's detections applied to the tracker, late history read back first.
//! - [`journal`]: frames journaled at each flush, visits written at checkpoints, replay at start.
//! - [`checkpoint_take`]: a checkpoint's changed visits taken in slices between frames.
//! - [`writer`]: commits each flush, then sends its ACKs; checkpoints commit on their own.
//! - [`live`]: the alert bus every live stream subscribes to.
//! - [`health`] and [`metrics`]: what the pipeline reports about itself.

pub mod admission;
pub mod apply;
pub mod checkpoint_take;
pub mod dedupe;
pub mod health;
pub mod ingest;
pub mod journal;
pub mod lanes;
pub mod live;
pub mod metrics;
pub mod restore;
pub mod writer;

pub use health::Health;
pub use ingest::{run_ingest, Ingest, IngestConfig, IngestParts};
pub use live::AlertBus;
pub use metrics::PipelineMetrics;
pub use restore::{restore, Restored};
pub use writer::{run_writer, Committed, Flush};
