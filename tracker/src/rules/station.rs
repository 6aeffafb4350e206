//! # Station rules: alerts about a station (`tag` null) from what the station watch found:
//! silent, back, clock skew, power fault, overheating, a growing backlog.

use super::Draft;
use crate::station_watch::Finding;
use tagwatch_model::{AlertDetail, AlertKind, FrameKey, GeoPoint};

/// The alert for `finding`, placed at its station's `position`. Its id comes from the frame that
/// showed it, so applying that frame again raises the same alert.
pub(crate) fn draft(
    finding: Finding,
    frame: Option<FrameKey>,
    position: GeoPoint,
    now_ms: i64,
) -> Draft {
    let station = finding.station();
    let by_frame = |scope: &str| match frame {
        Some(f) => format!("{scope}-{station}-{}-{}", f.session, f.seq),
        None => format!("{scope}-{station}-{now_ms}"),
    };
    let mut detail = AlertDetail::default();
    let (kind, id, seen_at_ms) = match finding {
        Finding::Silent { last_frame_ms, .. } => {
            detail.silent_s = Some((now_ms - last_frame_ms) / 1000);
            let id = format!("station_silent-{station}-{last_frame_ms}");
            (AlertKind::StationSilent, id, last_frame_ms)
        }
        Finding::Skewed { skew_ms, .. } => {
            detail.clock_skew_s = Some(skew_ms as f64 / 1000.0);
            let id = by_frame("station_clock_skew");
            (AlertKind::StationClockSkew, id, now_ms)
        }
        Finding::Back { last_frame_ms, .. } => {
            detail.silent_s = Some((now_ms - last_frame_ms) / 1000);
            (AlertKind::StationBack, by_frame("station_back"), now_ms)
        }
        Finding::PowerFault { .. } => {
            let id = by_frame("station_power_fault");
            (AlertKind::StationPowerFault, id, now_ms)
        }
        Finding::Overheated { temp_c, .. } => {
            detail.temp_c = Some(temp_c);
            (
                AlertKind::StationOverheat,
                by_frame("station_overheat"),
                now_ms,
            )
        }
        Finding::Backlog { frames, .. } => {
            detail.backlog = Some(frames);
            (
                AlertKind::StationBacklog,
                by_frame("station_backlog"),
                now_ms,
            )
        }
    };
    Draft {
        kind,
        id,
        tag: None,
        station,
        position,
        seen_at_ms,
        detail,
    }
}
