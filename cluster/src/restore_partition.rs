//! # One partition's tracker, rebuilt from the store when a shard takes the partition.
//!
//! What `serve` restores at start ([`tagwatch_ingest::restore`]), kept to the partition's own
//! vehicles: the stations (all: any vehicle may pass any), the partition's stolen and armed tags
//! and the alerts their open visits raised already, its visits that may still grow, its armed vehicles
//! and companion pairs, every geofence and where the mobile readers were. No journal is replayed:
//! the frames after the partition's committed sequence are still in JetStream, and the worker
//! reads them next.

use tagwatch_store::Store;
use tagwatch_tracker::{Command, Tracker, TrackerConfig};

use crate::bus::MAX_PARTITIONS;
use crate::partition::Groups;

/// The tracker for `partition` (of `count`), as its vehicles stand in the store.
pub async fn restore_partition(
    store: &Store,
    config: TrackerConfig,
    groups: &Groups,
    partition: u16,
    count: u16,
) -> Result<Tracker, tagwatch_store::Error> {
    let mine = |tag| groups.partition(tag, count) == partition;
    // Visit ids above every id in the store, in the partition's own lane (see
    // `Tracker::set_visit_lane`): no two shards ever create the same id.
    let (next_visit, _) = store.next_ids().await?;
    let mut tracker = Tracker::new(config, next_visit, 1);
    tracker.set_visit_lane(partition, MAX_PARTITIONS);
    for (station, _) in store.stations().await? {
        tracker.set_station(&station);
    }
    let cases: Vec<_> = store
        .open_cases()
        .await?
        .into_iter()
        .filter(|&(tag, _)| mine(tag))
        .collect();
    for &(tag, case) in &cases {
        tracker.report_stolen(tag, case);
    }
    let open_visits: Vec<_> = store
        .open_visits(config.hot_window_ms)
        .await?
        .into_iter()
        .filter(|v| mine(v.tag))
        .collect();
    let oldest = open_visits.iter().map(|v| v.first_seen_ms).min();
    for fix in store.reader_fixes_since(oldest.unwrap_or(i64::MAX)).await? {
        tracker.restore_reader_fix(fix);
    }
    for visit in open_visits {
        tracker.restore_visit(visit);
    }
    let guards: Vec<_> = store
        .guards()
        .await?
        .into_iter()
        .filter(|&(tag, _, _)| mine(tag))
        .collect();
    for &(tag, _, position) in &guards {
        tracker.arm(tag, position);
    }
    for fence in store.geofences().await? {
        tracker.command(Command::Geofence(fence), 0);
    }
    for (tag, companion) in store.pairs().await? {
        if mine(tag) {
            tracker.command(Command::Pair { tag, companion }, 0);
        }
    }
    // A stolen or armed tag's visit that alerted before stays alerted.
    let watched = cases.iter().map(|&(tag, _)| tag);
    for tag in watched.chain(guards.iter().map(|&(tag, _, _)| tag)) {
        // Oldest first, as they were raised: a rule that remembers only the latest alerted
        // visit (the armed rule) ends where it was.
        for alert in store.alerts_for_tag(tag, 1_000).await?.iter().rev() {
            tracker.restore_alert(alert);
        }
    }
    Ok(tracker)
}
