//! # Applying a frame to the tracker: detections (late history first), alerts ahead, STATUS.
//!
//! Shared by the ingest (frames as they arrive) and the journal's replay at start (frames
//! committed but not checkpointed before a stop), so a frame is applied the same way both times.

use crate::metrics::PipelineMetrics;
use tagwatch_gateway::wire::{Body, Frame, Status};
use tagwatch_model::{Alert, Detection, GeoPoint, StationStatus, TagId};
use tagwatch_store::Store;
use tagwatch_tracker::station_watch::Heartbeat;
use tagwatch_tracker::{Observation, Tracker};

/// Applies a STATUS frame received at server time `now_ms`: the station watch hears its
/// heartbeat (the alerts it raises are returned) and the status to store is returned.
pub fn apply_status(
    tracker: &mut Tracker,
    frame: &Frame,
    status: &Status,
    now_ms: i64,
) -> (StationStatus, Vec<Alert>) {
    let beat = Heartbeat {
        backlog: status.backlog,
        temp_c: status.temp_c,
        power_fault: status.power & 0x80 != 0,
    };
    let time_ms = i64::try_from(frame.time_ms).unwrap_or(i64::MAX);
    let mut alerts = Vec::new();
    tracker.heard_status(frame.key(), time_ms, now_ms, beat, &mut alerts);
    let stored = StationStatus {
        station: frame.station,
        received_at_ms: now_ms,
        station_time_ms: time_ms,
        uptime_s: status.uptime_s,
        backlog: status.backlog,
        fw_version: status.fw_version,
        temp_c: status.temp_c,
        power: status.power,
        tags_in_range: status.tags_in_range,
    };
    (stored, alerts)
}

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
) -> Result<(i64, Vec<Alert>), tagwatch_store::Error> {
    let Body::Detections(_) = &frame.body else {
        return Ok((tracker.next_visit_id(), Vec::new()));
    };
    let detections = detections_of(frame);
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
    let alerts = tracker.apply(observation(frame, &detections), now_ms);
    metrics.detections_applied.inc_by(detections.len() as u64);
    Ok((first_visit_id, alerts))
}

/// Raises at once the stolen, armed, panic and tamper alerts a DETECTIONS frame will raise (see
/// `Tracker::alert_ahead`): for the ingest, as the frame is taken in, before it waits its turn.
pub fn alert_ahead(tracker: &mut Tracker, frame: &Frame, now_ms: i64) -> Vec<Alert> {
    let Body::Detections(records) = &frame.body else {
        return Vec::new();
    };
    // Most frames carry no watched tag and no urgent flag: they cost a lookup per record.
    if !records
        .iter()
        .any(|r| tracker.judges_ahead(r.tag, r.tag_flags))
    {
        return Vec::new();
    }
    let detections = detections_of(frame);
    tracker.alert_ahead(observation(frame, &detections), now_ms)
}

/// A DETECTIONS frame's detections, each at its own time by the station's clock.
fn detections_of(frame: &Frame) -> Vec<Detection> {
    let Body::Detections(records) = &frame.body else {
        return Vec::new();
    };
    let time_ms = frame_time(frame);
    records
        .iter()
        .map(|r| Detection {
            tag: r.tag,
            station: frame.station,
            seen_at_ms: time_ms.saturating_sub(i64::from(r.age_ms)),
            rssi: r.rssi,
            reads: r.reads,
            tag_flags: r.tag_flags,
        })
        .collect()
}

fn frame_time(frame: &Frame) -> i64 {
    i64::try_from(frame.time_ms).unwrap_or(i64::MAX)
}

/// What the tracker is told about a frame's detections.
fn observation<'a>(frame: &Frame, detections: &'a [Detection]) -> Observation<'a> {
    Observation {
        frame: frame.key(),
        sent_at_ms: frame_time(frame),
        reader_position: frame
            .position
            .and_then(|p| GeoPoint::from_e7(p.lat_e7, p.lon_e7).ok()),
        detections,
    }
}
