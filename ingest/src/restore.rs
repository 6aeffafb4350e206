//! # Restore: the live state rebuilt from the store at start.
//!
//! Before the first frame is taken, the tracker gets back what the store holds: the stations and
//! their keys, the stolen hotlist, the visits later frames may still extend (and where the mobile
//! readers were meanwhile), armed vehicles, geofences, companion pairs and which visits have
//! alerted; the exactly-once bookkeeping gets the sessions' watermarks; and the frames the last
//! run committed but did not checkpoint are applied again ([`crate::journal::replay`]).

use crate::dedupe::{Dedupe, DEFAULT_WINDOW};
use crate::journal::{self, Replayed};
use crate::metrics::PipelineMetrics;
use anyhow::Context;
use tagwatch_gateway::StationKeys;
use tagwatch_store::Store;
use tagwatch_tracker::{Command, Tracker, TrackerConfig};

/// The live state, ready for [`crate::Ingest`].
#[derive(Debug)]
pub struct Restored {
    pub tracker: Tracker,
    pub dedupe: Dedupe,
    pub replayed: Replayed,
}

/// Rebuilds the tracker and the exactly-once state from `store`, and fills `keys` with the
/// stations' keys.
pub async fn restore(
    store: &Store,
    config: TrackerConfig,
    keys: &StationKeys,
    metrics: &PipelineMetrics,
) -> anyhow::Result<Restored> {
    let (next_visit, next_alert) = store.next_ids().await?;
    let mut tracker = Tracker::new(config, next_visit, next_alert);
    for (station, key) in store.stations().await? {
        tracker.set_station(&station);
        keys.insert(station.id, key);
    }
    let open_cases = store.open_cases().await?;
    for &(tag, case) in &open_cases {
        tracker.report_stolen(tag, case);
    }
    // Visits that later frames (resends, backlog) may still extend, and where the mobile
    // readers among their stations were while they were heard.
    let open_visits = store.open_visits(config.hot_window_ms).await?;
    let oldest = open_visits.iter().map(|v| v.first_seen_ms).min();
    for fix in store.reader_fixes_since(oldest.unwrap_or(i64::MAX)).await? {
        tracker.restore_reader_fix(fix);
    }
    for visit in open_visits {
        tracker.restore_visit(visit);
    }
    let guards = store.guards().await?;
    for &(tag, _, position) in &guards {
        tracker.arm(tag, position);
    }
    for fence in store.geofences().await? {
        tracker.command(Command::Geofence(fence), 0);
    }
    for (tag, companion) in store.pairs().await? {
        tracker.command(Command::Pair { tag, companion }, 0);
    }
    // A stolen or armed tag's visit that was alerted before the restart stays alerted.
    let watched = open_cases.iter().map(|&(tag, _)| tag);
    for tag in watched.chain(guards.iter().map(|&(tag, _, _)| tag)) {
        // Oldest first, as they were raised: a rule that remembers only the latest alerted
        // visit (the armed rule) ends where it was.
        for alert in store.alerts_for_tag(tag, 1_000).await?.iter().rev() {
            tracker.restore_alert(alert);
        }
    }
    let mut dedupe = Dedupe::new(DEFAULT_WINDOW);
    dedupe.restore(store.watermarks().await?);
    // Frames the last run committed but did not checkpoint: applied again, last.
    let replayed = journal::replay(&mut tracker, store, metrics, next_alert)
        .await
        .context("applying the frame journal again")?;
    tracing::info!(
        stations = keys.len(),
        visits_restored = tracker.visits_in_memory(),
        frames_replayed = replayed.frames,
        "state restored from the store"
    );
    Ok(Restored {
        tracker,
        dedupe,
        replayed,
    })
}
