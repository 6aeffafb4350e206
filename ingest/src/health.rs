//! # Health: what the ingest and the store writer report about themselves.
//!
//! Shared atomics, written by the pipeline's tasks and read by whoever answers for it (the API's
//! health check and metrics).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize};

/// Liveness of the pipeline behind the API, updated by the ingest and store tasks.
#[derive(Debug, Default)]
pub struct Health {
    /// False while the store refuses commits (frames then get BUSY or no answer).
    pub store_ok: AtomicBool,
    pub last_commit_ms: AtomicI64,
    /// Frames applied whose flush has not committed yet.
    pub frames_in_flight: AtomicUsize,
    /// Frames waiting in the gateway → tracker queue.
    pub queue_depth: AtomicUsize,
}
