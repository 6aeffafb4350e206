//! # Applying a frame's detections to the tracker, late history first.
//!
//! Shared by the ingest (frames as they arrive) and the journal's replay at start (frames
//! committed but not checkpointed before a stop), so a frame is applied the same way both times.

use crate::metrics::PipelineMetrics;
use tagwatch_gateway::wire::{Body, Frame};
use tagwatch_model::{Detection, GeoPoint, TagId};
use tagwatch_store::Store;
use tagwatch_tracker::{Observation, Tracker};

/// Applies a DETECTIONS frame at server time `now_ms`; returns the tracker's next visit id
/// before it was applied (journaled with it) and the alerts it raised. `resume_visit_id`: a
/// journaled frame applied again continues the visit ids from where it first did.
///
/// A late backlog belongs next to visits that may have left memory: they are brought back from
/// the store first, so the backlog merges into them instead of splitting them; if the store
/// cannot be read the frame is not applied.
pub async fn apply_detections(
    tracker: &mut Tracker,
    store: &Store,
    metrics: &PipelineMetrics,
    frame: &Frame,
    now_ms: i64,
    resume_visit_id: Option<i64>,
) -> Result<(i64, Vec<tagwatch_model::Alert>), tagwatch_store::Error> {
    let Body::Detections(records) = &frame.body else {
        return Ok((tracker.next_visit_id(), Vec::new()));
    };
    let time_ms = i64::try_from(frame.time_ms).unwrap_or(i64::MAX);
    let detections: Vec<Detection> = records
        .iter()
        .map(|r| Detection {
            tag: r.tag,
            station: frame.station,
            seen_at_ms: time_ms.saturating_sub(i64::from(r.age_ms)),
            rssi: r.rssi,
            reads: r.reads,
            tag_flags: r.tag_flags,
        })
        .collect();
    // One look at the store for the whole frame (its detections share the station), over the
    // union of their windows: restoring a few visits more than needed is harmless.
    let windows = tracker.history_needed(&detections);
    if let (Some(from), Some(to)) = (
        windows.iter().map(|w| w.2).min(),
        windows.iter().map(|w| w.3).max(),
    ) {
        let mut tags: Vec<TagId> = windows.iter().map(|w| w.0).collect();
        tags.sort_unstable();
        tags.dedup();
        let visits = store.visits_near(frame.station, &tags, from, to).await?;
        visits.into_iter().for_each(|v| tracker.restore_visit(v));
        metrics.history_lookups.inc();
    }
    if let Some(next) = resume_visit_id {
        tracker.resume_visit_ids(next);
    }
    let first_visit_id = tracker.next_visit_id();
    let reader_position = frame
        .position
        .and_then(|p| GeoPoint::from_e7(p.lat_e7, p.lon_e7).ok());
    let observation = Observation {
        frame: frame.key(),
        sent_at_ms: time_ms,
        reader_position,
        detections: &detections,
    };
    let alerts = tracker.apply(observation, now_ms);
    metrics.detections_applied.inc_by(detections.len() as u64);
    Ok((first_visit_id, alerts))
}
